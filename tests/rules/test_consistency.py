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
    lines = list(decision.trace)  # raises AssertionError if test() and check() disagree
    matched = [line for line in lines if line.endswith("→ match")]
    if decision.rule is None:
        assert not matched
        assert lines[-1] == "no rule matched → reject 480 Temporarily Unavailable"
    else:
        assert len(matched) == 1
        assert matched[0].startswith(f"rule {decision.rule!r}: ")
