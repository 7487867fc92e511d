"""The week at a glance: decisions for every slot of an ISO week (for ``rufweiche week``).

Slots are local wall-clock times in the plan's zone. In the spring the skipped hour still gets
a slot: 02:00 on that Sunday does not exist in Europe/Berlin, and Python reads it with the offset
before the change, i.e. as the instant 03:00 CEST, so the slot shows what happens then. In the
autumn the doubled hour gets one slot (its first occurrence, ``fold=0``).
"""

from __future__ import annotations

import datetime as dt

from rules.days import DayStatus
from rules.decide import CallInfo, decide
from rules.decision import Decision
from rules.plan import DialPlan
from rules.presence import PresenceSnapshot


def week_days(year: int, week: int) -> tuple[dt.date, ...]:
    """Monday to Sunday of ISO week ``year-Www``; ValueError for a week that does not exist."""
    monday = dt.date.fromisocalendar(year, week, 1)
    return tuple(monday + dt.timedelta(days=i) for i in range(7))


def week_slots(
    plan: DialPlan, year: int, week: int, step_minutes: int = 60
) -> tuple[dt.datetime, ...]:
    """Aware datetimes, one per ``step_minutes`` of local wall-clock time, Monday 00:00 first."""
    if not 0 < step_minutes <= 1440 or 1440 % step_minutes:
        raise ValueError(f"step_minutes {step_minutes!r} must divide a day (1440 minutes)")
    return tuple(
        dt.datetime(day.year, day.month, day.day, m // 60, m % 60, tzinfo=plan.zone)
        for day in week_days(year, week)
        for m in range(0, 1440, step_minutes)
    )


def week_grid(
    plan: DialPlan,
    call: CallInfo,
    presence: PresenceSnapshot,
    year: int,
    week: int,
    step_minutes: int = 60,
) -> tuple[tuple[dt.datetime, Decision], ...]:
    """``decide`` for every slot of the week (168 calls for hours: well under 10 ms)."""
    return tuple(
        (slot, decide(plan, call, presence, slot))
        for slot in week_slots(plan, year, week, step_minutes)
    )


def week_status(plan: DialPlan, year: int, week: int) -> tuple[DayStatus, ...]:
    """Holiday / closed day / vacation of each day of the week, Monday first."""
    return tuple(plan.day_status(day) for day in week_days(year, week))
