"""Compiled conditions: small objects that answer "does this call match, and why (not)?".

Each condition is built once at load time from the ``when:`` of a rule and holds everything it
needs precompiled (frozensets, interval tables), so that ``check`` costs a few dict/set look-ups
and one f-string for the trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rules.days import DayStatus
from rules.presence import PresenceState
from rules.timeofweek import DAY_TITLES, Week


class Context:
    """One call as the conditions see it (built by :func:`rules.decide`, never by authors)."""

    __slots__ = (
        "_day",
        "called",
        "callee",
        "caller",
        "date",
        "day_status",
        "local",
        "minute",
        "presence",
        "stamp",
        "weekday",
    )

    def __init__(
        self,
        local: dt.datetime,
        caller: str | None,
        called: str,
        presence: Mapping[str, PresenceState],
        callee: str | None,
        day_status: Callable[[dt.date], DayStatus],
    ) -> None:
        self.local = local
        self.date = local.date()
        self.weekday = local.weekday()
        self.minute = self.weekday * 1440 + local.hour * 60 + local.minute
        self.stamp = f"{DAY_TITLES[self.weekday]} {local.hour:02d}:{local.minute:02d}"
        self.caller = caller
        self.called = called
        self.presence = presence
        self.callee = callee
        self.day_status = day_status
        self._day: DayStatus | None = None

    @property
    def day(self) -> DayStatus:
        if self._day is None:
            self._day = self.day_status(self.date)
        return self._day

    def state(self, person: str) -> PresenceState:
        # A person missing from the snapshot counts as available (rules/presence.py).
        return self.presence.get(person, PresenceState.AVAILABLE)


class Condition(Protocol):
    def check(self, ctx: Context) -> tuple[bool, str]: ...


@dataclass(frozen=True, slots=True)
class ScheduleIs:
    name: str
    week: Week
    on_closed_days: bool
    described: str

    def check(self, ctx: Context) -> tuple[bool, str]:
        interval = self.week.find(ctx.minute)
        if interval is None:
            return False, f"{ctx.stamp} is outside schedule {self.name!r} ({self.described})"
        if not self.on_closed_days:
            origin = ctx.date - dt.timedelta(days=(ctx.weekday - interval.origin) % 7)
            status = ctx.day if origin == ctx.date else ctx.day_status(origin)
            if status.closed:
                return False, (
                    f"{ctx.stamp} is in {interval.label} of schedule {self.name!r}, "
                    f"but {origin.isoformat()} is {status.why}"
                )
        return True, f"{ctx.stamp} is in {interval.label} of schedule {self.name!r}"


@dataclass(frozen=True, slots=True)
class WeekdayIs:
    days: frozenset[int]
    text: str

    def check(self, ctx: Context) -> tuple[bool, str]:
        ok = ctx.weekday in self.days
        return ok, f"{DAY_TITLES[ctx.weekday]} is {'' if ok else 'not '}in {self.text!r}"


@dataclass(frozen=True, slots=True)
class DayKindIs:
    kind: str  # "holiday", "closed", "vacation"
    expected: bool

    def check(self, ctx: Context) -> tuple[bool, str]:
        day = ctx.day
        if self.kind == "holiday":
            actual = day.holiday is not None
        elif self.kind == "vacation":
            actual = day.vacation is not None
        else:
            actual = day.closed
        what = day.why if actual else f"not {'a ' if self.kind != 'vacation' else 'in '}"
        if not actual:
            what += {"holiday": "public holiday", "closed": "closed day", "vacation": "vacation"}[
                self.kind
            ]
        return actual is self.expected, f"{ctx.date.isoformat()} is {what}"


@dataclass(frozen=True, slots=True)
class CallerIn:
    """Caller number in a set of numbers and/or starting with one of some prefixes."""

    numbers: frozenset[str]
    prefixes: tuple[str, ...]
    text: str  # "list 'blocked'", "number +49171...", "prefix +49151"

    def check(self, ctx: Context) -> tuple[bool, str]:
        caller = ctx.caller
        if caller is None:
            return False, f"caller is anonymous, not in {self.text}"
        if caller in self.numbers or (self.prefixes and caller.startswith(self.prefixes)):
            return True, f"caller {caller} is in {self.text}"
        return False, f"caller {caller} not in {self.text}"


@dataclass(frozen=True, slots=True)
class CallerAnonymousIs:
    expected: bool

    def check(self, ctx: Context) -> tuple[bool, str]:
        anonymous = ctx.caller is None
        text = "caller is anonymous" if anonymous else f"caller {ctx.caller} is not anonymous"
        return anonymous is self.expected, text


@dataclass(frozen=True, slots=True)
class CalledIn:
    numbers: frozenset[str]

    def check(self, ctx: Context) -> tuple[bool, str]:
        ok = ctx.called in self.numbers
        listed = ", ".join(sorted(self.numbers))
        return ok, f"called {ctx.called} is {'' if ok else 'not '}one of {listed}"


@dataclass(frozen=True, slots=True)
class IsExtension:
    expected: bool

    def check(self, ctx: Context) -> tuple[bool, str]:
        if ctx.callee is None:
            return not self.expected, f"called {ctx.called} is not an extension"
        return self.expected, f"called {ctx.called} is the extension of {ctx.callee!r}"


@dataclass(frozen=True, slots=True)
class PresenceIs:
    person: str  # a person id, or "callee"
    states: frozenset[PresenceState]
    negate: bool
    text: str  # "available", "not dnd/offline"

    def check(self, ctx: Context) -> tuple[bool, str]:
        who = self.person
        if who == "callee":
            if ctx.callee is None:
                return False, f"called {ctx.called} is not an extension, so there is no callee"
            who = ctx.callee
        state = ctx.state(who)
        ok = (state in self.states) is not self.negate
        return ok, f"{who} is {state.value} (wanted {self.text})"


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]

    def check(self, ctx: Context) -> tuple[bool, str]:
        reasons = []
        for condition in self.conditions:
            ok, why = condition.check(ctx)
            if not ok:
                return False, why
            reasons.append(why)
        return True, " and ".join(reasons) if reasons else "no conditions"


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]

    def check(self, ctx: Context) -> tuple[bool, str]:
        reasons = []
        for condition in self.conditions:
            ok, why = condition.check(ctx)
            if ok:
                return True, why
            reasons.append(why)
        return False, "none of: " + "; ".join(reasons)


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition

    def check(self, ctx: Context) -> tuple[bool, str]:
        ok, why = self.condition.check(ctx)
        return not ok, f"not ({why})"
