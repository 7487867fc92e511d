"""The runtime form of a dial plan: what :func:`rules.compile.build_plan` produces and
:func:`rules.decide` walks. Immutable after loading, except for two memo tables (day status per
date, holidays per year) that only ever cache the results of pure functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from zoneinfo import ZoneInfo

from rules.conditions import Condition, Context
from rules.days import DayStatus, public_holidays
from rules.decision import Final, OnFailure, Step, Target
from rules.errors import Problem
from rules.model import PlanSpec
from rules.presence import PresenceState

_ONE_DAY = dt.timedelta(days=1)
DEFAULT_FEATURE_CODES: Mapping[str, PresenceState] = MappingProxyType(
    {
        "*30": PresenceState.AVAILABLE,
        "*31": PresenceState.AWAY,
        "*32": PresenceState.DND,
        # Issue 18: the day/night override ("calls to the service now" / "back to normal",
        # the owner's presence as on his page); a plan's own feature_codes: replace these.
        "*40": PresenceState.AWAY,
        "*41": PresenceState.AVAILABLE,
    }
)


@dataclass(frozen=True, slots=True)
class Person:
    """A person of the business, or (``is_service``) the secretarial service answering for it."""

    id: str
    name: str
    devices: Mapping[str, str]  # device name -> URI ("sip:201@office", "tel:+49170...")
    choices: tuple[tuple[Condition | None, str], ...]  # which device "current" means, first match
    default_device: str  # when no choice matches
    is_service: bool = False
    # Targets built on demand and kept: building a frozen dataclass costs ~2 µs on a slow core.
    _targets: dict[tuple[str, str], Target] = field(default_factory=dict, repr=False, compare=False)

    def current_device(self, ctx: Context) -> str:
        """The device that ringing "the person" rings now (hot path of :meth:`current`)."""
        for condition, device in self.choices:
            if condition is None or condition.test(ctx):
                return device
        return self.default_device

    def current(self, ctx: Context) -> tuple[str, str]:
        """(device name, why) of the device that ringing "the person" rings now."""
        reason = "default device"
        for condition, device in self.choices:
            if condition is None:
                return device, "always"
            ok, why = condition.check(ctx)
            if ok:
                return device, why
            reason = f"default device: {why}"
        return self.default_device, reason

    def target(self, ref: str, device: str) -> Target:
        key = (ref, device)
        found = self._targets.get(key)
        if found is None:
            found = Target(ref, self.devices[device], self.id, device, self.is_service)
            self._targets[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Pick:
    """A target chosen when the call comes in: "the person" (current device) or "the callee"."""

    ref: str  # as written: "mayer", "mayer.current", "callee", "callee.mobile"
    person: str | None  # None = the callee (the person whose extension was called)
    device: str | None  # None = the person's current device


@dataclass(frozen=True, slots=True)
class StepPlan:
    sources: tuple[Target | Pick, ...]
    timeout: float
    parallel: bool | None  # None: parallel when the step has several targets
    confirm: bool
    on_busy: OnFailure
    on_no_answer: OnFailure
    on_unreachable: OnFailure
    static: Step | None  # the finished step when no source is a Pick
    # Steps by the identities of their targets. Every Target that reaches build() is kept alive
    # (a static source, or Person._targets), so an id is never reused for another target;
    # hashing the dataclasses instead costs ~0.4 µs per target.
    _built: dict[tuple[int, ...], Step] = field(default_factory=dict, repr=False, compare=False)

    def build(self, targets: tuple[Target, ...]) -> Step:
        """The step ringing ``targets`` (memoised; :func:`rules.decide.warm` fills it at load)."""
        key = tuple([id(t) for t in targets])
        step = self._built.get(key)
        if step is None:
            parallel = self.parallel if self.parallel is not None else len(targets) > 1
            step = Step(
                targets,
                self.timeout,
                parallel,
                self.confirm,
                self.on_busy,
                self.on_no_answer,
                self.on_unreachable,
            )
            self._built[key] = step
        return step


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    condition: Condition | None  # None: always matches
    steps: tuple[StepPlan, ...]
    final: Final
    static_steps: tuple[Step, ...] | None  # precomputed when no step has a Pick
    # True/False when the rule requires (not) calling an extension; decide() then screens it
    # out with a constant trace line instead of evaluating every condition.
    extension_only: bool | None = None
    trace_prefix: str = field(init=False, repr=False, compare=False)  # "rule 'x': "
    screened: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "trace_prefix", f"rule {self.name!r}: ")
        where = "an extension" if self.extension_only else "a main number, not an extension"
        object.__setattr__(
            self, "screened", f"rule {self.name!r}: only for calls to {where} → no match"
        )


@dataclass(frozen=True, slots=True)
class Extension:
    number: str  # E.164
    person: str
    rules: tuple[Rule, ...]  # tried before the plan's rules


@dataclass(frozen=True, slots=True)
class Vacation:
    start: dt.date
    end: dt.date  # inclusive
    name: str


@dataclass(frozen=True, eq=False)
class DialPlan:
    tenant: str
    name: str
    announce_as: str
    timezone: str
    zone: ZoneInfo
    region: str
    numbers: tuple[str, ...]  # every number the plan answers (main numbers, then extensions)
    people: Mapping[str, Person]
    service: Mapping[str, Person]
    feature_codes: Mapping[str, PresenceState]
    rules: tuple[Rule, ...]
    extensions: Mapping[str, Extension]
    holiday_country: str | None
    holiday_subdivision: str | None
    closed_days: frozenset[dt.date]
    vacations: tuple[Vacation, ...]
    source: str
    number_marks: Mapping[str, tuple[int, int]]  # number -> (line, column) in the source
    spec: PlanSpec = field(repr=False)
    warnings: tuple[Problem, ...] = ()
    holiday_categories: tuple[str, ...] = ("public",)  # holidays: {categories: [...]}
    _days: dict[dt.date, DayStatus] = field(default_factory=dict, repr=False)
    # raw number from the network -> routing form ("" for a withheld caller); see decide()
    _numbers: dict[str, str] = field(default_factory=dict, repr=False)
    zone_suffix: str = field(init=False, repr=False)  # " (Europe/Berlin)", for traces

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone_suffix", f" ({self.timezone})")

    def __repr__(self) -> str:
        return f"<DialPlan {self.tenant!r} from {self.source!r}>"

    @property
    def store_caller(self) -> str:
        """How call records store the caller: "full", "masked" or "none" (``privacy:``)."""
        return self.spec.privacy.store_caller

    def person(self, person_id: str) -> Person | None:
        """A person or a service by id."""
        return self.people.get(person_id) or self.service.get(person_id)

    def day_status(self, date: dt.date) -> DayStatus:
        """Holiday / closed day / vacation of ``date`` for this plan (memoised; cheap)."""
        status = self._days.get(date)
        if status is None:
            # A whole year at once (~2 ms): one call per year pays, not the first call of each
            # day (~8 µs each, which would land in the decision time's 99th percentile).
            self._days.update(self._year(date.year))
            status = self._days[date]
        return status

    def _year(self, year: int) -> dict[dt.date, DayStatus]:
        table: Mapping[dt.date, str] = {}
        if self.holiday_country is not None:
            table = public_holidays(
                self.holiday_country, self.holiday_subdivision, year, self.holiday_categories
            )
        day = dt.date(year, 1, 1)
        days = {}
        while day.year == year:
            vacation = next((v.name for v in self.vacations if v.start <= day <= v.end), None)
            days[day] = DayStatus(day, table.get(day), day in self.closed_days, vacation)
            day += _ONE_DAY
        return days

    def local(self, now: dt.datetime) -> dt.datetime:
        """``now`` as wall-clock time in the plan's zone (what schedules are matched against)."""
        return now.astimezone(self.zone)
