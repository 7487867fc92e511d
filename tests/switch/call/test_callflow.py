"""The call flow, driven by events alone: every transition, then random event sequences.

The flow is pure, so these tests need no fakes: they feed events and compare the
commands with what the docstring of :mod:`switch.call.callflow` promises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.decision import Decision, Failure, Final, FinalKind, OnFailure, Step, Target
from switch.call.callflow import CallFlow
from switch.call.events import (
    AnswerAndBridge,
    CallerGone,
    Cancel,
    CancelTimer,
    Command,
    ConfirmDigit,
    Dial,
    Event,
    Finished,
    HangUpCaller,
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegRinging,
    Outcome,
    RejectCaller,
    RelayRinging,
    Shutdown,
    StartTimer,
    TimerFired,
)
from switch.call.states import (
    CALL_TRANSITIONS,
    LEG_TRANSITIONS,
    START,
    UNANSWERED,
    CallState,
    LegState,
    MediaPhase,
)
from switch.errors import CallFlowError, SwitchError
from tests.helpers.callflow import (
    CALLED,
    CALLER_NUMBER,
    DESK,
    HOME,
    MOBILE,
    REJECT,
    T0,
    call,
    decisions,
    draw_event,
    plan,
)


def started(*steps: Step, final: Final = REJECT, caller: str | None = CALLER_NUMBER) -> CallFlow:
    flow = CallFlow(call(caller), plan(*steps, final=final))
    flow.start(T0)
    return flow


def failed(leg: int, failure: Failure = Failure.BUSY, status: int = 486) -> LegFailed:
    return LegFailed(leg, status, "Busy Here", failure, T0 + 50)


def finished(outcome: Outcome, by: str, status: int, leg: int | None = None) -> Finished:
    return Finished(outcome, leg, by, status, T0 + 99)


# ------------------------------------------------------------------ start


def test_no_steps_and_reject_rejects_at_once() -> None:
    flow = CallFlow(call(), plan(final=Final(FinalKind.REJECT, 403, "Forbidden")))
    states = [flow.state]
    assert flow.start(T0) == [
        RejectCaller(403, "Forbidden"),
        Finished(Outcome.REJECTED, None, "switch", 403, T0),
    ]
    states.append(flow.state)
    assert states == [CallState.IDLE, CallState.FINISHED]
    assert flow.finished
    assert flow.result == Finished(Outcome.REJECTED, None, "switch", 403, T0)
    assert flow.legs == {}


@pytest.mark.parametrize("kind", [FinalKind.VOICEMAIL, FinalKind.ANNOUNCEMENT])
def test_no_steps_and_media_final_is_missed_with_480_until_media_exists(kind: FinalKind) -> None:
    flow = CallFlow(call(), plan(final=Final(kind, 480, "Temporarily Unavailable", "closed")))
    assert flow.start(T0) == [
        RejectCaller(480, f"Temporarily Unavailable ({kind.value} not available yet)"),
        Finished(Outcome.MISSED, None, "switch", 480, T0),
    ]


def test_start_dials_the_first_step_with_business_and_caller_in_display() -> None:
    flow = CallFlow(call(), plan(Step((DESK,), 15), Step((MOBILE,), 20)))
    assert flow.start(T0) == [
        Dial(1, DESK, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-1", 15),
    ]
    assert flow.state is CallState.DIALLING
    assert flow.timer == "step-1"
    assert dict(flow.legs) == {1: flow.legs[1]}
    assert flow.legs[1].target == DESK
    assert flow.legs[1].step == 0
    assert flow.legs[1].state is LegState.DIALLING


def test_anonymous_caller_is_shown_as_anonym() -> None:
    flow = CallFlow(call(caller=None), plan(Step((DESK,), 15)))
    assert flow.start(T0)[0] == Dial(1, DESK, "Tischlerei Müller: Anonym", None, CALLED)


def test_parallel_step_dials_every_target_at_once_with_one_timer() -> None:
    flow = CallFlow(call(), plan(Step((DESK, MOBILE, HOME), 20, parallel=True)))
    commands = flow.start(T0)
    assert [c.leg for c in commands if isinstance(c, Dial)] == [1, 2, 3]
    assert [c.target for c in commands if isinstance(c, Dial)] == [DESK, MOBILE, HOME]
    assert commands[-1] == StartTimer("step-1", 20)


def test_sequential_step_with_several_targets_hunts_in_order() -> None:
    flow = CallFlow(call(), plan(Step((DESK, MOBILE, HOME), 10)))
    assert flow.start(T0) == [
        Dial(1, DESK, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-1.1", 10),
    ]
    # The first position times out: cancelled, and the next one gets the same timeout.
    commands = flow.handle(TimerFired("step-1.1", T0 + 10))
    assert commands == [
        Cancel(1),
        Dial(2, MOBILE, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-1.2", 10),
    ]
    assert flow.legs[1].state is LegState.CANCELLED
    assert flow.legs[1].failure is Failure.NO_ANSWER
    # The second fails: its timer is cancelled, the third rings.
    assert flow.handle(failed(2)) == [
        CancelTimer("step-1.2"),
        Dial(3, HOME, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-1.3", 10),
    ]
    # The end of the hunt ends the step: here, the last step, so the final action.
    assert flow.handle(failed(3, Failure.UNREACHABLE, 503)) == [
        CancelTimer("step-1.3"),
        RejectCaller(480, "Temporarily Unavailable"),
        Finished(Outcome.MISSED, None, "switch", 480, T0 + 50),
    ]


def test_steps_without_targets_are_skipped() -> None:
    flow = CallFlow(call(), plan(Step((), 5), Step((MOBILE,), 20)))
    assert flow.start(T0) == [
        Dial(1, MOBILE, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-2", 20),
    ]
    assert flow.legs[1].step == 1


def test_only_empty_steps_with_reject_is_rejected_not_missed() -> None:
    flow = CallFlow(call(), plan(Step((), 5), final=Final(FinalKind.REJECT, 486, "Busy Here")))
    assert flow.start(T0) == [
        RejectCaller(486, "Busy Here"),
        Finished(Outcome.REJECTED, None, "switch", 486, T0),
    ]


# ------------------------------------------------------------------ ringing


def test_first_ringing_is_relayed_once_as_180() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    assert flow.handle(LegRinging(1, 180, False, T0 + 1)) == [RelayRinging(180)]
    assert flow.handle(LegRinging(2, 180, False, T0 + 2)) == []
    assert flow.handle(LegRinging(1, 180, False, T0 + 3)) == []
    assert flow.legs[1].state is LegState.RINGING
    assert flow.legs[1].ringing_at == T0 + 1  # the first 18x, not the repeat
    assert flow.legs[2].ringing_at == T0 + 2


def test_early_media_is_relayed_when_one_leg_rings_alone() -> None:
    flow = started(Step((MOBILE,), 20))
    assert flow.handle(LegRinging(1, 183, True, T0 + 1)) == [RelayRinging(183, media_from_leg=1)]


def test_early_media_is_relayed_from_a_hunt_position() -> None:
    flow = started(Step((DESK, MOBILE), 20))
    flow.handle(TimerFired("step-1.1", T0 + 20))
    assert flow.handle(LegRinging(2, 183, True, T0 + 21)) == [RelayRinging(183, media_from_leg=2)]


def test_parallel_early_media_is_relayed_as_plain_180() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    assert flow.handle(LegRinging(2, 183, True, T0 + 1)) == [RelayRinging(180)]


def test_ringing_from_a_leg_no_longer_wanted_is_not_relayed() -> None:
    flow = started(Step((DESK,), 5), Step((MOBILE,), 20))
    flow.handle(TimerFired("step-1", T0 + 5))
    assert flow.handle(LegRinging(1, 180, False, T0 + 6)) == []
    assert flow.legs[1].state is LegState.CANCELLED
    assert flow.handle(LegRinging(2, 180, False, T0 + 7)) == [RelayRinging(180)]


def test_ringing_after_the_next_step_began_is_still_relayed_only_once() -> None:
    flow = started(Step((DESK,), 5), Step((MOBILE,), 20))
    assert flow.handle(LegRinging(1, 180, False, T0 + 1)) == [RelayRinging(180)]
    flow.handle(TimerFired("step-1", T0 + 5))
    assert flow.handle(LegRinging(2, 183, True, T0 + 7)) == []


# ------------------------------------------------------------------ answer


def test_answer_without_180_bridges() -> None:
    """Kamailio with several children may forward the 200 before the 180 (DESIGN.md)."""
    flow = started(Step((DESK,), 15))
    assert flow.handle(LegAnswered(1, T0 + 5)) == [AnswerAndBridge(1), CancelTimer("step-1")]
    assert flow.state is CallState.BRIDGED
    assert flow.answered_leg == 1
    assert flow.timer is None
    assert flow.legs[1].state is LegState.BRIDGED
    assert flow.legs[1].answered_at == T0 + 5
    # ... and the 180 it overtook arrives afterwards: nothing to do.
    assert flow.handle(LegRinging(1, 180, False, T0 + 6)) == []


def test_first_answer_wins_and_the_others_are_cancelled() -> None:
    flow = started(Step((DESK, MOBILE, HOME), 20, parallel=True))
    flow.handle(LegRinging(1, 180, False, T0 + 1))
    flow.handle(failed(3))
    assert flow.handle(LegAnswered(2, T0 + 8)) == [
        AnswerAndBridge(2),
        Cancel(1),
        CancelTimer("step-1"),
    ]
    assert flow.legs[1].state is LegState.CANCELLED
    assert flow.legs[1].ended_at == T0 + 8
    assert flow.legs[3].state is LegState.FAILED


def test_glare_second_answer_gets_cancel_which_means_bye() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(LegAnswered(2, T0 + 5)) == [Cancel(2)]
    assert flow.answered_leg == 1
    assert flow.state is CallState.BRIDGED


def test_retransmitted_200_of_the_bridged_leg_is_ignored() -> None:
    flow = started(Step((DESK,), 20))
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(LegAnswered(1, T0 + 6)) == []
    assert flow.legs[1].answered_at == T0 + 5


def test_answer_of_a_timed_out_leg_gets_cancel() -> None:
    """A 200 crossing our CANCEL must be ACKed and BYEd (RFC 3261 §15)."""
    flow = started(Step((DESK,), 5), Step((MOBILE,), 20))
    flow.handle(TimerFired("step-1", T0 + 5))
    assert flow.handle(LegAnswered(1, T0 + 6)) == [Cancel(1)]
    assert flow.state is CallState.DIALLING
    assert flow.legs[1].state is LegState.CANCELLED


def test_confirm_step_counts_every_answer_as_confirmed_for_now() -> None:
    flow = started(Step((HOME,), 20, confirm=True))
    assert flow.handle(LegAnswered(1, T0 + 5)) == [AnswerAndBridge(1), CancelTimer("step-1")]
    assert flow.handle(ConfirmDigit(1, "1", T0 + 6)) == []
    assert flow.state is CallState.BRIDGED


# ------------------------------------------------------------------ failures and steps


def test_one_failure_in_a_parallel_round_only_ends_that_leg() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True), Step((HOME,), 30))
    assert flow.handle(failed(1)) == []
    assert flow.legs[1].state is LegState.FAILED
    assert flow.legs[1].status == 486
    assert flow.legs[1].reason == "Busy Here"
    assert flow.legs[1].failure is Failure.BUSY
    assert flow.legs[1].ended_at == T0 + 50
    assert flow.handle(failed(2, Failure.UNREACHABLE, 404)) == [
        CancelTimer("step-1"),
        Dial(3, HOME, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-2", 30),
    ]


def test_last_step_failing_carries_out_reject_final_as_missed() -> None:
    flow = started(Step((DESK,), 20), final=Final(FinalKind.REJECT, 486, "Busy Here"))
    assert flow.handle(failed(1)) == [
        CancelTimer("step-1"),
        RejectCaller(486, "Busy Here"),
        Finished(Outcome.MISSED, None, "switch", 486, T0 + 50),
    ]


def test_last_step_failing_with_voicemail_final_rejects_until_media_exists() -> None:
    flow = started(Step((DESK,), 20), final=Final(FinalKind.VOICEMAIL))
    assert flow.handle(TimerFired("step-1", T0 + 20)) == [
        Cancel(1),
        RejectCaller(480, "Temporarily Unavailable (voicemail not available yet)"),
        Finished(Outcome.MISSED, None, "switch", 480, T0 + 20),
    ]


@pytest.mark.parametrize(
    ("failure", "policy"),
    [
        (Failure.BUSY, "on_busy"),
        (Failure.NO_ANSWER, "on_no_answer"),
        (Failure.UNREACHABLE, "on_unreachable"),
        (Failure.DECLINED, "on_unreachable"),  # Step.on: anything else is "unreachable"
    ],
)
@pytest.mark.parametrize("on", [OnFailure.NEXT, OnFailure.FINAL])
def test_step_policy_decides_between_next_step_and_final(
    failure: Failure, policy: str, on: OnFailure
) -> None:
    step = Step((DESK,), 20, **{policy: on})  # type: ignore[arg-type]
    flow = started(step, Step((MOBILE,), 20))
    commands = flow.handle(failed(1, failure))
    if on is OnFailure.NEXT:
        assert Dial(2, MOBILE, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED) in (
            commands
        )
        assert not flow.finished
    else:
        assert commands[-2:] == [
            RejectCaller(480, "Temporarily Unavailable"),
            Finished(Outcome.MISSED, None, "switch", 480, T0 + 50),
        ]
        assert 2 not in flow.legs


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        ((Failure.BUSY, Failure.UNREACHABLE), Failure.BUSY),
        ((Failure.UNREACHABLE, Failure.BUSY), Failure.BUSY),
        ((Failure.DECLINED, Failure.UNREACHABLE), Failure.DECLINED),
        ((Failure.UNREACHABLE, Failure.NO_ANSWER), Failure.NO_ANSWER),
        ((Failure.BUSY, Failure.NO_ANSWER), Failure.NO_ANSWER),
        ((Failure.UNREACHABLE, Failure.UNREACHABLE), Failure.UNREACHABLE),
    ],
)
def test_step_failure_is_the_most_telling_leg_failure(
    failures: tuple[Failure, Failure], expected: Failure
) -> None:
    # Only the expected failure's policy says FINAL: the flow ends iff it picked that one.
    policies = {
        Failure.BUSY: "on_busy",
        Failure.NO_ANSWER: "on_no_answer",
        Failure.UNREACHABLE: "on_unreachable",
        Failure.DECLINED: "on_unreachable",
    }
    kwargs = dict.fromkeys(set(policies.values()), OnFailure.NEXT)
    kwargs[policies[expected]] = OnFailure.FINAL
    step = Step((DESK, MOBILE), 20, True, False, **kwargs)
    flow = started(step, Step((HOME,), 20))
    flow.handle(failed(1, failures[0]))
    flow.handle(failed(2, failures[1]))
    assert flow.finished
    assert 3 not in flow.legs


def test_step_timeout_counts_as_no_answer_even_after_a_busy_leg() -> None:
    step = Step((DESK, MOBILE), 20, parallel=True, on_busy=OnFailure.FINAL)
    flow = started(step, Step((HOME,), 20))
    flow.handle(failed(1))
    assert flow.handle(TimerFired("step-1", T0 + 20)) == [
        Cancel(2),
        Dial(3, HOME, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-2", 20),
    ]


def test_timeout_cancels_every_ringing_leg_then_moves_on() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True), Step((HOME,), 30))
    flow.handle(LegRinging(1, 180, False, T0 + 1))
    assert flow.handle(TimerFired("step-1", T0 + 20)) == [
        Cancel(1),
        Cancel(2),
        Dial(3, HOME, "Tischlerei Müller: +4917112345678", CALLER_NUMBER, CALLED),
        StartTimer("step-2", 30),
    ]
    assert {flow.legs[1].state, flow.legs[2].state} == {LegState.CANCELLED}


def test_stale_timer_of_an_earlier_step_is_ignored() -> None:
    flow = started(Step((DESK,), 20), Step((MOBILE,), 30))
    flow.handle(failed(1))  # cancels step-1, but a timer may fire while being cancelled
    assert flow.handle(TimerFired("step-1", T0 + 20)) == []
    assert flow.legs[2].state is LegState.DIALLING
    assert flow.timer == "step-2"


def test_timer_after_the_bridge_is_ignored() -> None:
    flow = started(Step((DESK,), 20))
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(TimerFired("step-1", T0 + 20)) == []


def test_487_after_our_cancel_is_recorded_once() -> None:
    flow = started(Step((DESK,), 5), Step((MOBILE,), 20))
    flow.handle(TimerFired("step-1", T0 + 5))
    assert flow.handle(LegFailed(1, 487, "Request Terminated", Failure.NO_ANSWER, T0 + 6)) == []
    assert flow.legs[1].status == 487
    assert flow.legs[1].reason == "Request Terminated"
    assert flow.legs[1].failure is Failure.NO_ANSWER  # how the step counted it: timed out
    assert flow.handle(LegFailed(1, 500, "Server Error", Failure.UNREACHABLE, T0 + 7)) == []
    assert flow.legs[1].status == 487


def test_repeated_failure_report_is_ignored() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    flow.handle(failed(1))
    assert flow.handle(failed(1, Failure.UNREACHABLE, 503)) == []
    assert flow.legs[1].status == 486
    assert flow.legs[2].state is LegState.DIALLING


# ------------------------------------------------------------------ ending


def test_caller_cancel_while_ringing_cancels_every_leg() -> None:
    flow = started(Step((DESK, MOBILE, HOME), 20, parallel=True))
    flow.handle(failed(2))
    assert flow.handle(CallerGone(True, T0 + 99)) == [
        Cancel(1),
        Cancel(3),
        CancelTimer("step-1"),
        finished(Outcome.CANCELLED, "caller", 487),
    ]
    assert flow.timer is None
    assert flow.legs[2].state is LegState.FAILED


def test_caller_bye_after_bridge_byes_the_callee() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    flow.handle(LegAnswered(2, T0 + 5))
    assert flow.handle(CallerGone(False, T0 + 99)) == [
        Cancel(2),
        finished(Outcome.ANSWERED, "caller", 200, leg=2),
    ]
    assert flow.legs[2].state is LegState.CANCELLED
    assert flow.legs[2].ended_at == T0 + 99
    assert flow.answered_leg == 2


def test_callee_hang_up_hangs_up_the_caller() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(LegHungUp(2, T0 + 6)) == []  # not the bridged leg
    assert flow.handle(LegHungUp(1, T0 + 99)) == [
        HangUpCaller(),
        finished(Outcome.ANSWERED, "callee", 200, leg=1),
    ]
    assert flow.legs[1].state is LegState.HUNG_UP


def test_hang_up_of_a_ringing_leg_is_ignored() -> None:
    flow = started(Step((DESK,), 20))
    assert flow.handle(LegHungUp(1, T0 + 6)) == []
    assert flow.legs[1].state is LegState.DIALLING


def test_bridged_leg_failing_counts_as_callee_hang_up() -> None:
    flow = started(Step((DESK,), 20))
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(LegFailed(1, 408, "Timeout", Failure.NO_ANSWER, T0 + 99)) == [
        HangUpCaller(),
        finished(Outcome.ANSWERED, "callee", 200, leg=1),
    ]


def test_target_answering_after_the_caller_left_is_just_cancelled() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    flow.handle(CallerGone(True, T0 + 10))
    assert flow.handle(LegAnswered(1, T0 + 11)) == [Cancel(1)]
    assert flow.result == Finished(Outcome.CANCELLED, None, "caller", 487, T0 + 10)


def test_shutdown_while_ringing_rejects_the_caller_with_503() -> None:
    flow = started(Step((DESK, MOBILE), 20, parallel=True))
    assert flow.handle(Shutdown(T0 + 99)) == [
        Cancel(1),
        Cancel(2),
        CancelTimer("step-1"),
        RejectCaller(503, "Service Unavailable"),
        finished(Outcome.ABORTED, "switch", 503),
    ]


def test_shutdown_after_bridge_ends_both_sides() -> None:
    flow = started(Step((DESK,), 20))
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(Shutdown(T0 + 99)) == [
        Cancel(1),
        HangUpCaller(),
        finished(Outcome.ABORTED, "switch", 200, leg=1),
    ]


@pytest.mark.parametrize(
    "event",
    [
        LegRinging(1, 180, False, T0 + 200),
        LegFailed(1, 486, "Busy Here", Failure.BUSY, T0 + 200),
        LegHungUp(1, T0 + 200),
        CallerGone(False, T0 + 200),
        TimerFired("step-1", T0 + 200),
        ConfirmDigit(1, "1", T0 + 200),
        Shutdown(T0 + 200),
    ],
)
@pytest.mark.parametrize("ending", ["caller", "callee", "shutdown", "reject"])
def test_events_after_the_end_yield_nothing(event: Event, ending: str) -> None:
    flow = started(Step((DESK,), 20))
    if ending == "reject":
        flow.handle(failed(1))
    else:
        flow.handle(LegAnswered(1, T0 + 5))
        ends: dict[str, Event] = {
            "caller": CallerGone(False, T0 + 99),
            "callee": LegHungUp(1, T0 + 99),
            "shutdown": Shutdown(T0 + 99),
        }
        flow.handle(ends[ending])
    result = flow.result
    assert flow.finished
    assert flow.handle(event) == []
    assert flow.result is result


@pytest.mark.parametrize("answered_first", [False, True])
def test_any_answer_after_the_end_gets_cancel(answered_first: bool) -> None:
    flow = started(Step((DESK,), 20))
    if answered_first:
        flow.handle(LegAnswered(1, T0 + 5))
        flow.handle(LegHungUp(1, T0 + 6))
    else:
        flow.handle(Shutdown(T0 + 6))
    assert flow.handle(LegAnswered(1, T0 + 7)) == [Cancel(1)]


# ------------------------------------------------------------------ misuse


def test_unknown_leg_is_a_programmer_error() -> None:
    flow = started(Step((DESK,), 20))
    with pytest.raises(CallFlowError, match=r"leg 7 of call 'call-1@test' is not a leg") as info:
        flow.handle(LegAnswered(7, T0))
    assert info.value.leg == 7
    assert info.value.call_id == "call-1@test"
    assert isinstance(info.value, SwitchError)


def test_caller_leg_in_a_leg_event_is_a_programmer_error() -> None:
    flow = started(Step((DESK,), 20))
    with pytest.raises(CallFlowError, match=r"leg 0 .* is the caller's leg"):
        flow.handle(LegRinging(0, 180, False, T0))


def test_unknown_leg_in_confirm_digit_is_a_programmer_error() -> None:
    flow = started(Step((DESK,), 20))
    with pytest.raises(CallFlowError, match="leg 2"):
        flow.handle(ConfirmDigit(2, "1", T0))


def test_unknown_leg_after_the_end_is_still_an_error() -> None:
    flow = started(final=REJECT)
    with pytest.raises(CallFlowError):
        flow.handle(LegHungUp(1, T0))


def test_handle_before_start_is_a_programmer_error() -> None:
    flow = CallFlow(call(), plan(Step((DESK,), 20)))
    with pytest.raises(CallFlowError, match="got CallerGone before start"):
        flow.handle(CallerGone(True, T0))


def test_start_twice_is_a_programmer_error() -> None:
    flow = started(Step((DESK,), 20))
    with pytest.raises(CallFlowError, match="started twice"):
        flow.start(T0)


# ------------------------------------------------------------------ the tables


def test_leg_table_final_states_are_exactly_the_ones_without_moves() -> None:
    final = {state for state, moves in LEG_TRANSITIONS.items() if not moves}
    assert final == {LegState.FAILED, LegState.CANCELLED, LegState.HUNG_UP}
    assert set(LEG_TRANSITIONS) == set(LegState)
    assert {LegState.DIALLING, LegState.RINGING} == UNANSWERED


def test_call_table_covers_every_state_and_only_finished_is_final() -> None:
    assert set(CALL_TRANSITIONS) == set(CallState)
    assert [s for s, moves in CALL_TRANSITIONS.items() if not moves] == [CallState.FINISHED]


# ------------------------------------------------------------------ random sequences


@dataclass
class Oracle:
    """Watches events and commands from outside and checks the promised invariants."""

    flow: CallFlow
    dialled: list[int] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)
    failed_fed: set[int] = field(default_factory=set)
    hung_up_fed: set[int] = field(default_factory=set)
    answered_fed: set[int] = field(default_factory=set)
    started_timers: set[str] = field(default_factory=set)
    cancelled_timers: set[str] = field(default_factory=set)
    fired_timers: set[str] = field(default_factory=set)
    bridged: list[int] = field(default_factory=list)
    relayed: list[RelayRinging] = field(default_factory=list)
    rejected: list[RejectCaller] = field(default_factory=list)
    hung_up_caller: int = 0
    finished: list[Finished] = field(default_factory=list)
    max_live: int = 0

    def __post_init__(self) -> None:
        steps = self.flow.decision.steps
        self.max_live = max((len(s.targets) for s in steps), default=0)

    def start(self, at: int) -> None:
        before = self.flow.state
        self.check(None, self.flow.start(at))
        assert self.flow.state in CALL_TRANSITIONS[before][START]

    def feed(self, event: Event) -> list[Command]:
        before = self.flow.state
        was_finished = self.flow.finished
        match event:
            case TimerFired(timer=timer) if self.timer_active(timer):
                self.fired_timers.add(timer)
            case LegFailed(leg=leg):
                self.failed_fed.add(leg)
            case LegHungUp(leg=leg) if leg in self.bridged:
                self.hung_up_fed.add(leg)
            case LegAnswered(leg=leg):
                self.answered_fed.add(leg)
            case _:
                pass
        commands = self.flow.handle(event)
        after = self.flow.state
        if after is not before:
            assert after in CALL_TRANSITIONS[before][type(event)], (before, event, after)
        if was_finished:
            # After the end, only a late 200 gets an answer: its Cancel.
            expected = [Cancel(event.leg)] if isinstance(event, LegAnswered) else []
            assert commands == expected
        self.check(event, commands)
        return commands

    def timer_active(self, timer: str) -> bool:
        return timer in self.started_timers - self.cancelled_timers - self.fired_timers

    def check(self, event: Event | None, commands: Iterable[Command]) -> None:
        commands = list(commands)
        for index, command in enumerate(commands):
            # After Finished only a Cancel for a late 200 may follow (checked in feed).
            assert not self.finished or isinstance(command, Cancel), f"{command!r} after end"
            match command:
                case Dial(leg=leg):
                    assert leg == len(self.dialled) + 1
                    self.dialled.append(leg)
                case Cancel(leg=leg):
                    assert leg in self.dialled
                    if leg in self.bridged and not self.finished:
                        # The bridged leg is only ever ended together with the call.
                        assert isinstance(commands[-1], Finished), commands
                    self.cancelled.add(leg)
                case StartTimer(timer=timer):
                    assert timer not in self.started_timers
                    self.started_timers.add(timer)
                case CancelTimer(timer=timer):
                    assert self.timer_active(timer), timer
                    self.cancelled_timers.add(timer)
                case AnswerAndBridge(leg=leg):
                    assert not self.bridged
                    assert not self.rejected
                    assert isinstance(event, LegAnswered)
                    assert event.leg == leg
                    assert leg not in self.cancelled
                    assert leg not in self.failed_fed
                    self.bridged.append(leg)
                case RelayRinging():
                    assert not self.relayed
                    assert not self.bridged
                    assert isinstance(event, LegRinging)
                    self.relayed.append(command)
                case RejectCaller():
                    assert not self.rejected
                    assert not self.bridged
                    self.rejected.append(command)
                case HangUpCaller():
                    assert self.bridged
                    self.hung_up_caller += 1
                    assert self.hung_up_caller == 1
                case Finished():
                    assert index == len(commands) - 1, "Finished must be last"
                    self.finished.append(command)
        live = [v for v in self.flow.legs.values() if v.state in UNANSWERED]
        assert len(live) <= self.max_live
        if self.finished:
            self.check_end()

    def check_end(self) -> None:
        (result,) = self.finished
        assert self.flow.finished
        assert self.flow.result == result
        assert self.flow.timer is None
        for leg in self.dialled:
            closed = self.cancelled | self.failed_fed | self.hung_up_fed
            assert leg in closed, f"leg {leg} left open"
            assert self.flow.legs[leg].state not in UNANSWERED | {LegState.BRIDGED}
        assert self.started_timers == self.cancelled_timers | self.fired_timers
        assert result.answered_leg == (self.bridged[0] if self.bridged else None)
        if self.bridged:
            assert result.outcome in (Outcome.ANSWERED, Outcome.ABORTED)
            assert result.sip_status == 200
        elif self.rejected:
            assert result.sip_status == self.rejected[0].status
            assert result.outcome in (Outcome.REJECTED, Outcome.MISSED, Outcome.ABORTED)
        else:
            assert result.outcome is Outcome.CANCELLED
            assert result.sip_status == 487
        if result.outcome is Outcome.REJECTED:
            assert not self.dialled


@settings(max_examples=200, deadline=None)
@given(decision=decisions, data=st.data(), caller=st.sampled_from([CALLER_NUMBER, None]))
def test_random_event_sequences_keep_the_invariants(
    decision: Decision, data: st.DataObject, caller: str | None
) -> None:
    flow = CallFlow(call(caller), decision)
    oracle = Oracle(flow)
    at = T0
    oracle.start(at)
    for _ in range(data.draw(st.integers(0, 30))):
        at += 1
        oracle.feed(draw_event(data, oracle, at))
    # Liveness: letting every timer run out (or the caller hang up) always ends the call.
    for _ in range(20):
        if flow.finished:
            break
        at += 1
        timer = flow.timer
        oracle.feed(CallerGone(False, at) if timer is None else TimerFired(timer, at))
    assert flow.finished
    assert len(oracle.finished) == 1
    # And the world stays quiet (but consistent) after the end.
    for _ in range(data.draw(st.integers(0, 5))):
        at += 1
        oracle.feed(draw_event(data, oracle, at))
    assert len(oracle.finished) == 1


@settings(max_examples=200, deadline=None)
@given(decision=decisions)
def test_unanswered_call_rings_every_step_until_the_final_action(decision: Decision) -> None:
    """With every timer running out, each target is dialled once, in plan order."""
    flow = CallFlow(call(), decision)
    oracle = Oracle(flow)
    oracle.start(T0)
    at = T0
    while not flow.finished:
        at += 1
        timer = flow.timer
        assert timer is not None
        oracle.feed(TimerFired(timer, at))
    expected: list[Target] = []
    for step in decision.steps:
        expected.extend(step.targets)
        if step.targets and step.on_no_answer is OnFailure.FINAL:
            break
    assert [flow.legs[leg].target for leg in oracle.dialled] == expected
    assert oracle.rejected == [RejectCaller(decision.final.sip_status, oracle.rejected[0].reason)]
    outcome = (
        Outcome.REJECTED
        if not expected and decision.final.kind is FinalKind.REJECT
        else (Outcome.MISSED)
    )
    assert flow.result is not None
    assert flow.result.outcome is outcome


# ------------------------------------------------------------------ the tables at run time


def test_a_move_the_transition_table_does_not_list_raises_naming_event_and_states() -> None:
    flow = started(Step((DESK,), timeout=20.0))
    assert flow.state is CallState.DIALLING
    flow._trigger, flow._trigger_state = LegRinging, CallState.DIALLING  # as handle() does
    with pytest.raises(CallFlowError, match=r"LegRinging .* from 'dialling' to 'bridged'"):
        flow._enter(CallState.BRIDGED)
    assert flow.state is CallState.DIALLING


def test_the_media_phase_moves_only_along_its_table() -> None:
    flow = started(Step((DESK,), timeout=20.0))
    assert flow.media_phase is MediaPhase.NONE
    with pytest.raises(CallFlowError, match="from 'none' to 'recording'"):
        flow._enter_media(MediaPhase.RECORDING)
    assert flow.media_phase is MediaPhase.NONE


def test_the_state_is_read_only() -> None:
    flow = started(Step((DESK,), timeout=20.0))
    with pytest.raises(AttributeError):
        flow.state = CallState.FINISHED  # type: ignore[misc]
