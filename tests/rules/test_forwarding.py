"""Call forwarding (issue 18, ``*21*<number>#``): the targets of a forwarded person become
one ``tel:`` target in the same step; timeouts, order and the service stay as they are."""

from __future__ import annotations

from rules import CallInfo, decide
from rules.forwarding import FORWARD_DEVICE, ForwardedTrace, forward, forward_target
from tests.rules.helpers import MAIN, at, plan, refs, run

PLAN = plan(
    "rules:\n"
    "  - name: jan first\n"
    "    then:\n"
    "      - {ring: [jan.desk, jan.mobile, eva.desk], timeout: 15s, parallel: true}\n"
    "      - {ring: [svc.a1], timeout: 10s}\n"
    "      - {ring: [jan.desk], timeout: 5s}\n"
)
NUMBER = "+491709999999"


def test_a_forwarded_person_rings_the_number_in_every_step_with_the_plans_timeouts() -> None:
    plain = run(PLAN, at(2027, 5, 25))
    forwarded = decide(PLAN, CallInfo(MAIN), {}, at(2027, 5, 25), {"jan": NUMBER})
    assert refs(forwarded) == [[f"jan→{NUMBER}", "eva.desk"], ["svc.a1"], [f"jan→{NUMBER}"]]
    assert [s.timeout for s in forwarded.steps] == [s.timeout for s in plain.steps]
    assert forwarded.steps[0].parallel
    target = forwarded.steps[0].targets[0]
    assert (target.uri, target.owner, target.device) == (f"tel:{NUMBER}", "jan", FORWARD_DEVICE)
    assert forwarded.rule == plain.rule
    assert list(forwarded.trace) == [*plain.trace, f"jan is forwarded to {NUMBER}"]


def test_the_service_and_people_not_forwarded_stay() -> None:
    decision = run(PLAN, at(2027, 5, 25))
    assert forward(decision, {"svc": NUMBER, "otto": NUMBER}) is decision
    assert forward(decision, {}) is decision
    assert decide(PLAN, CallInfo(MAIN), {}, at(2027, 5, 25), {}) == decision


def test_a_decision_without_steps_is_not_changed() -> None:
    closed = plan("rules:\n  - {name: closed, then: voicemail}\n")
    decision = run(closed, at(2027, 5, 25))
    assert forward(decision, {"jan": NUMBER}) is decision


def test_the_forwarded_trace_is_a_sequence() -> None:
    trace = ForwardedTrace(("a",), ("b",))
    assert len(trace) == 2
    assert trace[1] == "b"
    assert trace[:1] == ("a",)
    assert list(trace) == ["a", "b"]
    assert repr(trace) == "ForwardedTrace(('a', 'b'))"
    target = run(PLAN, at(2027, 5, 25)).steps[0].targets[0]
    assert forward_target(target, NUMBER).ref == f"jan→{NUMBER}"
