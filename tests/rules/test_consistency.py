"""decide() finds the rule with the conditions' fast ``test``; the trace re-walks the rules with
``check``. For any call on the example plans both must agree (the trace raises otherwise), and
the trace must name the decided rule as the match."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import CallInfo, PresenceState, decide, load_dialplans

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
PLANS = load_dialplans([DIALPLANS])
NUMBERS = sorted(n for plan in PLANS for n in plan.numbers)
PEOPLE = sorted({pid for plan in PLANS for pid in [*plan.people, *plan.service]})
CALLERS = [
    None,
    "+491715550100",
    "+4915112345678",
    "+49894567890",
    "+49891234567",
    "+4915201234567",
    "+49301234567",
    "+49309876543",
    "+493517778889",
    "+495121987654",
    "+492211234567",
]


@settings(max_examples=300, deadline=None)
@given(
    called=st.sampled_from(NUMBERS),
    caller=st.sampled_from(CALLERS),
    minutes=st.integers(0, 2 * 365 * 24 * 60),
    presence=st.dictionaries(st.sampled_from(PEOPLE), st.sampled_from(list(PresenceState))),
)
def test_trace_agrees_with_the_decision(
    called: str, caller: str | None, minutes: int, presence: dict[str, PresenceState]
) -> None:
    plan = PLANS.for_number(called)
    assert plan is not None
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
    decision = decide(plan, CallInfo(called, caller), presence, now)
    lines = list(decision.trace)
    assert not lines[-1].startswith("note:")  # test() and check() found the same rule
    matched = [line for line in lines if line.endswith("→ match")]
    if decision.rule is None:
        assert not matched
        assert lines[-1] == "no rule matched → reject 480 Temporarily Unavailable"
    else:
        assert len(matched) == 1
        assert matched[0].startswith(f"rule {decision.rule!r}: ")


def test_a_presence_mapping_changed_after_the_decision_is_flagged_in_the_trace() -> None:
    plan = PLANS.plans["tischlerei-mueller"]
    presence = {"jan": PresenceState.AVAILABLE}
    now = dt.datetime(2027, 5, 26, 8, 0, tzinfo=dt.UTC)
    decision = decide(plan, CallInfo(plan.numbers[0], None), presence, now)
    assert decision.rule == "Jan in the workshop"
    presence["jan"] = PresenceState.AWAY  # forbidden by the contract, but must not crash
    assert decision.trace[-1] == (
        "note: the presence snapshot changed after the decision ('Jan in the workshop' was"
        " decided); the lines above describe the changed snapshot"
    )
    other = decide(plan, CallInfo(plan.numbers[0], None), presence, now)
    presence["jan"] = PresenceState.AVAILABLE
    assert other.rule == "otherwise the service"
    assert "Jan in the workshop" in other.trace[-2]
