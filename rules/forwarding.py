"""Call forwarding of a person (``*21*<number>#`` from his phone, or his page): pure.

A forwarding maps a person id to a phone number (E.164, checked against the outbound
permission classes by the switch before it is stored). :func:`forward` rewrites a decision:
every target owned by a forwarded person is replaced by one ``tel:<number>`` target (the
trunk), in the same step, so the plan's timeouts, order and failure handling stay as they
are. A person forwarded in two steps rings the number in both; two devices of one person in
one step ring the number once. The secretarial service is never forwarded this way.

The trace keeps the decision's lines and adds one line per forwarded person (lazily: the
switch does not read traces on the hot path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from rules.decision import Decision, Step, Target
from rules.trace import LazyLines

FORWARD_DEVICE = "forward"


def forward_target(target: Target, number: str) -> Target:
    """The trunk target that stands in for ``target`` of a forwarded person."""
    return Target(
        ref=f"{target.owner}→{number}",
        uri=f"tel:{number}",
        owner=target.owner,
        device=FORWARD_DEVICE,
    )


def _forward_step(step: Step, forwarding: Mapping[str, str], used: set[str]) -> Step:
    targets: list[Target] = []
    for target in step.targets:
        number = None if target.is_service else forwarding.get(target.owner)
        if number is not None:
            used.add(target.owner)
            target = forward_target(target, number)
        if all(t.uri != target.uri for t in targets):
            targets.append(target)
    return replace(step, targets=tuple(targets))


def forward(decision: Decision, forwarding: Mapping[str, str]) -> Decision:
    """``decision`` with the targets of forwarded people replaced (see the module docstring)."""
    if not forwarding or not decision.steps:
        return decision
    used: set[str] = set()
    steps = tuple(_forward_step(step, forwarding, used) for step in decision.steps)
    if not used:
        return decision
    notes = tuple(f"{person} is forwarded to {forwarding[person]}" for person in sorted(used))
    return replace(decision, steps=steps, trace=ForwardedTrace(decision.trace, notes))


class ForwardedTrace(LazyLines):
    """The decision's trace and the forwarding lines, joined when first read."""

    __slots__ = ("_base", "_notes")

    def __init__(self, base: Sequence[str], notes: tuple[str, ...]) -> None:
        super().__init__()
        self._base = base
        self._notes = notes

    def _write(self) -> tuple[str, ...]:
        return (*self._base, *self._notes)

    def __repr__(self) -> str:
        return f"ForwardedTrace({self.lines!r})"


__all__ = ["FORWARD_DEVICE", "ForwardedTrace", "forward", "forward_target"]
