"""The week at a glance: decisions for every slot of an ISO week (for ``rufweiche week``).

Slots are local wall-clock times in the plan's zone, and :func:`wall_instant` is the one rule
for a wall-clock time that the clock skips or repeats (``explain --at`` uses it too). In the
spring the skipped hour still gets a slot: 02:00 on that Sunday does not exist in Europe/Berlin;
it is read as the instant it becomes, 03:00 CEST, so the slot shows what happens then. In the
autumn the doubled hour gets one slot (its first occurrence, ``fold=0``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from rules.days import DayStatus
from rules.decide import CallInfo, decide
from rules.decision import Decision
from rules.plan import DialPlan
from rules.presence import PresenceSnapshot


def week_days(year: int, week: int) -> tuple[dt.date, ...]:
    """Monday to Sunday of ISO week ``year-Www``; ValueError for a week that does not exist."""
    monday = dt.date.fromisocalendar(year, week, 1)
    return tuple(monday + dt.timedelta(days=i) for i in range(7))


ClockChange = Literal["skipped", "repeated"]


def wall_instant(
    day: dt.date, at: dt.time, zone: dt.tzinfo
) -> tuple[dt.datetime, ClockChange | None]:
    """The instant of wall-clock time ``at`` on ``day`` in ``zone``, and whether the clock
    skips that time (it is read as the time it becomes: 02:30 -> 03:30 CEST) or repeats it
    (the first occurrence is taken)."""
    wall = dt.datetime.combine(day, at, tzinfo=zone).replace(fold=0)
    instant = wall.astimezone(dt.UTC).astimezone(zone)
    if instant.replace(tzinfo=None) != wall.replace(tzinfo=None):
        return instant, "skipped"
    if wall.replace(fold=1).utcoffset() != wall.utcoffset():
        return instant, "repeated"
    return instant, None


def week_slots(
    plan: DialPlan, year: int, week: int, step_minutes: int = 60
) -> tuple[dt.datetime, ...]:
    """Aware datetimes, one per ``step_minutes`` of local wall-clock time, Monday 00:00 first."""
    if not 0 < step_minutes <= 1440 or 1440 % step_minutes:
        raise ValueError(f"step_minutes {step_minutes!r} must divide a day (1440 minutes)")
    return tuple(
        wall_instant(day, dt.time(m // 60, m % 60), plan.zone)[0]
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
