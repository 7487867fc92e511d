"""A leg the worker could not place (no free call slot): 503 so that the edge tries the
call on another worker, unless something already reached a target.

Seen with 300 calls held (bench/concurrency.py): a worker's count said a leg was free,
pjsua still held the slot until the far end answered the BYE of the call before, and
the caller got the plan's 480 "nobody answered" although nobody had been rung.
"""

from __future__ import annotations

from rules.decision import Failure, Step
from switch.call.callflow import CallFlow
from switch.call.events import (
    CancelTimer,
    Dial,
    Finished,
    LegFailed,
    LegRinging,
    Outcome,
    RejectCaller,
    StartTimer,
)
from switch.call.states import CallState
from tests.helpers.callflow import CALLED, CALLER_NUMBER, DESK, HOME, MOBILE, T0, call, plan

DISPLAY = "Tischlerei Müller: +4917112345678"


def no_slot(leg: int, at: int = T0 + 5) -> LegFailed:
    return LegFailed(leg, 503, "INVITE could not be sent", Failure.UNREACHABLE, at, local=True)


def started(*steps: Step) -> CallFlow:
    flow = CallFlow(call(), plan(*steps))
    flow.start(T0)
    return flow


def test_no_slot_for_the_first_leg_gives_503_not_the_next_step() -> None:
    flow = started(Step((DESK,), 15), Step((MOBILE,), 20))
    assert flow.handle(no_slot(1)) == [
        CancelTimer("step-1"),
        RejectCaller(503, "Service Unavailable"),
        Finished(Outcome.REJECTED, None, "switch", 503, T0 + 5),
    ]
    assert flow.state is CallState.FINISHED


def test_a_503_from_the_target_itself_goes_on_with_the_plan() -> None:
    flow = started(Step((DESK,), 15), Step((MOBILE,), 20))
    remote = LegFailed(1, 503, "Service Unavailable", Failure.UNREACHABLE, T0 + 5)
    assert flow.handle(remote) == [
        CancelTimer("step-1"),
        Dial(2, MOBILE, DISPLAY, CALLER_NUMBER, CALLED),
        StartTimer("step-2", 20),
    ]


def test_a_hunt_gives_503_at_once_the_next_target_would_need_a_slot_too() -> None:
    flow = started(Step((DESK, MOBILE, HOME), 10))
    assert flow.handle(no_slot(1))[1:] == [
        RejectCaller(503, "Service Unavailable"),
        Finished(Outcome.REJECTED, None, "switch", 503, T0 + 5),
    ]


def test_once_a_target_rang_the_plan_goes_on_as_before() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    assert flow.handle(no_slot(1)) == []  # the mobile still rings
    flow.handle(LegRinging(2, 180, False, T0 + 6))
    busy = LegFailed(2, 486, "Busy Here", Failure.BUSY, T0 + 7)
    assert flow.handle(busy) == [
        CancelTimer("step-1"),
        RejectCaller(480, "Temporarily Unavailable"),
        Finished(Outcome.MISSED, None, "switch", 480, T0 + 7),
    ]


def test_no_slot_in_a_later_step_ends_that_step_only() -> None:
    flow = started(Step((DESK,), 15), Step((MOBILE,), 20))
    flow.handle(LegFailed(1, 486, "Busy Here", Failure.BUSY, T0 + 3))
    assert flow.handle(no_slot(2, T0 + 8)) == [
        CancelTimer("step-2"),
        RejectCaller(480, "Temporarily Unavailable"),
        Finished(Outcome.MISSED, None, "switch", 480, T0 + 8),
    ]
