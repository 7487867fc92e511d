"""Rules that can never match, found at load time (warnings of ``rufweiche check``).

Theory of operation: a compiled condition is an AND of *atoms* (:func:`atoms` flattens
:class:`rules.conditions.AllOf`). A later rule can never match when

- an earlier rule's atoms all follow from its own (:func:`shadows`): every call the later rule
  would match, the earlier one matches first (first match wins), or
- its own atoms contradict each other (:func:`contradiction`): schedule and weekday conditions
  with no minute of the week in common, a schedule that skips closed days together with
  ``holiday: true``, ``holiday: true`` with ``closed: false``.

Both are deliberately incomplete: :func:`implies` knows a few sure cases (equal atoms, fewer
weekdays, fewer presence states, a caller list contained in another, …) and answers False for
everything else, so a warning is never wrong, but not every dead rule is found.
"""

from __future__ import annotations

from rules import conditions as c
from rules.presence import PresenceState
from rules.timeofweek import MINUTES_PER_DAY

Spans = tuple[tuple[int, int], ...]  # sorted, disjoint half-open minute-of-week ranges
_ALL_STATES = frozenset(PresenceState)


def atoms(condition: c.Condition | None) -> tuple[c.Condition, ...]:
    """The conjuncts of a condition (nested ``all`` flattened); () for "always"."""
    if condition is None:
        return ()
    if isinstance(condition, c.AllOf):
        return tuple(a for part in condition.conditions for a in atoms(part))
    return (condition,)


def _allowed(presence: c.PresenceIs) -> frozenset[PresenceState]:
    return _ALL_STATES - presence.states if presence.negate else presence.states


def _caller_within(inner: c.CallerIn, outer: c.CallerIn) -> bool:
    prefixes = outer.prefixes
    return all(n in outer.numbers or n.startswith(prefixes) for n in inner.numbers) and all(
        p.startswith(prefixes) for p in inner.prefixes
    )


# (kind, expected) -> the day kinds that then hold as well
_DAY_IMPLIES = {
    ("holiday", True): {("closed", True)},
    ("vacation", True): {("closed", True)},
    ("closed", False): {("holiday", False), ("vacation", False)},
}


def implies(later: c.Condition, earlier: c.Condition) -> bool:
    """True only when every call for which ``later`` holds surely makes ``earlier`` hold."""
    if later == earlier:
        return True
    if isinstance(earlier, c.AnyOf):
        return any(implies(later, option) for option in earlier.conditions)
    if isinstance(later, c.AnyOf) and later.conditions:
        return all(implies(option, earlier) for option in later.conditions)
    if isinstance(earlier, c.WeekdayIs):
        if isinstance(later, c.WeekdayIs):
            return later.days <= earlier.days
        if isinstance(later, c.ScheduleIs):
            return _within(_schedule_spans(later), _weekday_spans(earlier))
        return False
    if isinstance(later, c.PresenceIs) and isinstance(earlier, c.PresenceIs):
        return later.person == earlier.person and _allowed(later) <= _allowed(earlier)
    if isinstance(later, c.CallerIn) and isinstance(earlier, c.CallerIn):
        return _caller_within(later, earlier)
    if isinstance(later, c.CalledIn) and isinstance(earlier, c.CalledIn):
        return later.numbers <= earlier.numbers
    if isinstance(later, c.DayKindIs) and isinstance(earlier, c.DayKindIs):
        return (earlier.kind, earlier.expected) in _DAY_IMPLIES.get(
            (later.kind, later.expected), set()
        )
    return False


def shadows(earlier: tuple[c.Condition, ...], later: tuple[c.Condition, ...]) -> bool:
    """Does a rule with ``earlier`` atoms match every call a rule with ``later`` atoms does?"""
    return all(any(implies(atom, wanted) for atom in later) for wanted in earlier)


# --- contradictions --------------------------------------------------------------------------


def _schedule_spans(schedule: c.ScheduleIs) -> Spans:
    return _merged([(i.start, i.end) for i in schedule.week.intervals])


def _weekday_spans(weekday: c.WeekdayIs) -> Spans:
    return _merged([(d * MINUTES_PER_DAY, (d + 1) * MINUTES_PER_DAY) for d in weekday.days])


def _merged(spans: list[tuple[int, int]]) -> Spans:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _intersection(a: Spans, b: Spans) -> Spans:
    out = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                out.append((start, end))
    return _merged(out)


def _within(inner: Spans, outer: Spans) -> bool:
    return _intersection(inner, outer) == inner


def _time_of(atom: c.Condition) -> tuple[Spans, str] | None:
    """The minutes of the week in which ``atom`` can hold, and how to name it; None: any."""
    if isinstance(atom, c.ScheduleIs):
        return _schedule_spans(atom), _schedule_name(atom)
    if isinstance(atom, c.WeekdayIs):
        return _weekday_spans(atom), f"weekday {atom.text!r}"
    if (
        isinstance(atom, c.AnyOf)
        and atom.conditions
        and all(isinstance(o, c.ScheduleIs) for o in atom.conditions)
    ):
        schedules = [o for o in atom.conditions if isinstance(o, c.ScheduleIs)]
        spans = _merged([span for s in schedules for span in _schedule_spans(s)])
        return spans, "schedule [" + ", ".join(s.name for s in schedules) + "]"
    return None


def _schedule_name(schedule: c.ScheduleIs) -> str:
    if schedule.name == "inline":
        return f"the inline schedule ({schedule.described})"
    return f"schedule {schedule.name!r} ({schedule.described})"


def _same_day_only(schedule: c.ScheduleIs) -> bool:
    """Every minute of the schedule lies on the day its range started on."""
    return all(
        i.start // MINUTES_PER_DAY == i.origin == (i.end - 1) // MINUTES_PER_DAY
        for i in schedule.week.intervals
    )


def _day_key(kind: str, expected: bool) -> str:
    return f"'{kind}: {'true' if expected else 'false'}'"


_CLOSED_KINDS = {"holiday": "holiday: true", "vacation": "vacation: true", "closed": "closed: true"}


def contradiction(conjuncts: tuple[c.Condition, ...]) -> str | None:
    """Why these atoms can never hold together, or None when no contradiction is known."""
    times = [t for t in map(_time_of, conjuncts) if t is not None]
    if times:
        common = times[0][0]
        for spans, _ in times[1:]:
            common = _intersection(common, spans)
        if not common:
            if len(times) == 1:
                return f"{times[0][1]} has no time in it"
            return " and ".join(name for _, name in times) + " have no time in common"
    days = {(a.kind, a.expected) for a in conjuncts if isinstance(a, c.DayKindIs)}
    for kind, expected in sorted(days):
        for other in sorted(_DAY_IMPLIES.get((kind, expected), set())):
            if (other[0], not other[1]) in days:
                return (
                    f"{_day_key(kind, expected)} and {_day_key(other[0], not other[1])} contradict"
                )
    closed = next((k for k, v in sorted(days) if v and k in _CLOSED_KINDS), None)
    if closed is not None:
        for atom in conjuncts:
            if isinstance(atom, c.ScheduleIs) and not atom.on_closed_days and _same_day_only(atom):
                return (
                    f"{_schedule_name(atom)} does not apply on closed days, and"
                    f" '{_CLOSED_KINDS[closed]}' asks for one (add on_closed_days: true"
                    " to the schedule)"
                )
    return None
