"""Small builders for rules tests: a plan from a YAML snippet, aware datetimes, a quick decide."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import pytest

from rules import CallInfo, Decision, DialPlan, DialPlanError, PresenceState, decide, load_plan_text

BERLIN = ZoneInfo("Europe/Berlin")
MAIN = "+4923319876540"

SECTIONS = {
    "tenant": "tenant: test\n",
    "name": "name: Test GmbH\n",
    "numbers": 'numbers: ["+49 2331 987654-0"]\n',
    "people": "people:\n"
    '  jan: {name: Jan, devices: {desk: "sip:201@office", mobile: "tel:+491701234567"}}\n'
    '  eva: {devices: {desk: "sip:202@office"}}\n',
    "service": 'service:\n  svc: {devices: {a1: "sip:a1@svc", a2: "sip:a2@svc"}}\n',
}
HEAD = "".join(SECTIONS.values())


def head_without(body: str) -> str:
    """HEAD minus the sections that ``body`` defines itself."""
    return "".join(v for k, v in SECTIONS.items() if not body.startswith(f"{k}:"))


def plan(body: str, head: str = HEAD) -> DialPlan:
    """A plan from ``head`` plus ``body`` (dedented), named <test>."""
    return load_plan_text(head + textwrap.dedent(body), "<test>")


def problems(body: str, head: str = HEAD) -> list[str]:
    """The rendered problems of a broken plan (fails the test if the plan loads)."""
    with pytest.raises(DialPlanError) as info:
        plan(body, head)
    return [str(p) for p in info.value.problems]


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def run(
    p: DialPlan,
    when: dt.datetime,
    caller: str | None = None,
    called: str = MAIN,
    presence: Mapping[str, PresenceState] | None = None,
) -> Decision:
    return decide(p, CallInfo(called, caller), presence or {}, when)


def refs(decision: Decision) -> list[list[str]]:
    return [[t.ref for t in step.targets] for step in decision.steps]
