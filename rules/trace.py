"""The trace of a decision, written when it is read.

``decide`` finds the matching rule with the conditions' ``test`` methods, which build no strings.
The trace repeats the walk with ``check``, which says why each condition holds or not, the first
time anybody reads it, and keeps the lines. Both walks see the same inputs, so they find the
same rule (tests/rules/test_consistency.py checks that ``test`` and ``check`` agree) — unless the
caller changed the presence mapping after ``decide`` returned, which the contract forbids
(rules/presence.py: an immutable snapshot). Then the trace says so in its last line rather than
raising: a trace is read for explanations and logs, and must never crash a call.
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

from rules.conditions import Context
from rules.decision import Step
from rules.timeofweek import DAY_TITLES, HHMM

if TYPE_CHECKING:
    from rules.plan import DialPlan, Rule

Resolver = Callable[["Rule", "DialPlan", Context, list[str] | None], tuple[Step, ...]]


class LazyLines(Sequence[str]):
    """A read-only sequence of lines, written by :meth:`_write` when first read, then kept.

    :class:`Trace` and :class:`rules.forwarding.ForwardedTrace` are the two kinds.
    """

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines: tuple[str, ...] | None = None

    @abstractmethod
    def _write(self) -> tuple[str, ...]: ...

    @property
    def lines(self) -> tuple[str, ...]:
        if self._lines is None:
            self._lines = self._write()
        return self._lines

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self.lines[index]

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)


class Trace(LazyLines):
    """A read-only sequence of trace lines, computed on first access."""

    __slots__ = ("_inputs",)

    def __init__(
        self,
        plan: DialPlan,
        ctx: Context,
        local: dt.datetime,
        rules: tuple[Rule, ...],
        matched: int | None,
        resolve: Resolver,
    ) -> None:
        # one tuple instead of six attributes: this object is built on every call
        super().__init__()
        self._inputs = (plan, ctx, local, rules, matched, resolve)

    def _write(self) -> tuple[str, ...]:
        plan, ctx, local, rules, matched, resolve = self._inputs
        lines = [
            f"call from {ctx.caller or 'anonymous'} to {ctx.called} at "
            f"{DAY_TITLES[ctx.weekday]} {ctx.day.iso} {HHMM[ctx.minute % 1440]} "
            f"{local.tzname()}{plan.zone_suffix}"
        ]
        is_extension = ctx.callee is not None
        found: int | None = None
        for index, rule in enumerate(rules):
            screen = rule.extension_only
            if screen is not None and screen is not is_extension:
                lines.append(rule.screened)
                continue
            if rule.condition is None:
                ok, why = True, "no conditions"
            else:
                ok, why = rule.condition.check(ctx)
            lines.append(f"{rule.trace_prefix}{why} → {'match' if ok else 'no match'}")
            if ok:
                found = index
                resolve(rule, plan, ctx, lines)
                break
        if found is None:
            lines.append("no rule matched → reject 480 Temporarily Unavailable")
        if found != matched:
            decided = "no rule" if matched is None else repr(rules[matched].name)
            lines.append(
                f"note: the presence snapshot changed after the decision ({decided} was decided);"
                " the lines above describe the changed snapshot"
            )
        return tuple(lines)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Trace):
            return self.lines == other.lines
        if isinstance(other, tuple):
            return self.lines == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Trace({self.lines!r})"
