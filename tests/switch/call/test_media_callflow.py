"""The call flow with media services: announcement, voicemail, answer confirmation, whisper."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.decision import Decision, Failure, Final, FinalKind, Step
from switch.call.callflow import CallFlow
from switch.call.events import (
    CALLER,
    AnswerAndBridge,
    AnswerCaller,
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
    OpenEarlyMedia,
    Outcome,
    PlaybackDone,
    PlayPrompt,
    RecordCaller,
    RejectCaller,
    Shutdown,
    StartTimer,
    StopPlayback,
    StopRecording,
    TimerFired,
)
from switch.call.prompts import MediaOptions
from switch.call.states import CALL_TRANSITIONS, CallState, LegState
from tests.helpers.callflow import (
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

MEDIA = MediaOptions(voicemail_max_s=60, confirm_timeout_s=10, prompt_guard_s=120)
CLOSED = Final(FinalKind.ANNOUNCEMENT, 480, "Temporarily Unavailable", "Wir haben Betriebsferien.")
VOICEMAIL = Final(FinalKind.VOICEMAIL)


def media_flow(*steps: Step, final: Final = REJECT, media: MediaOptions = MEDIA) -> CallFlow:
    return CallFlow(call(), plan(*steps, final=final), media)


# ------------------------------------------------------------------ announcement


def test_announcement_answers_plays_and_hangs_up_as_missed() -> None:
    flow = media_flow(final=CLOSED)
    assert flow.start(T0) == [
        AnswerCaller(),
        PlayPrompt(CALLER, "Wir haben Betriebsferien."),
        StartTimer("prompt", 120),
    ]
    assert flow.state is CallState.MEDIA
    assert flow.handle(PlaybackDone(CALLER, T0 + 5)) == [
        CancelTimer("prompt"),
        HangUpCaller(),
        Finished(Outcome.MISSED, None, "switch", 200, T0 + 5, "announcement"),
    ]
    assert flow.finished


def test_announcement_after_the_steps_failed() -> None:
    flow = media_flow(Step((DESK,), 15), final=CLOSED)
    flow.start(T0)
    commands = flow.handle(TimerFired("step-1", T0 + 15))
    assert commands[:2] == [Cancel(1), AnswerCaller()]
    assert PlayPrompt(CALLER, "Wir haben Betriebsferien.") in commands


def test_announcement_without_text_says_nobody_is_there() -> None:
    flow = media_flow(final=Final(FinalKind.ANNOUNCEMENT))
    play = flow.start(T0)[1]
    assert play == PlayPrompt(CALLER, "Tischlerei Müller. Leider ist gerade niemand erreichbar.")


def test_announcement_guard_timer_ends_a_prompt_whose_end_never_came() -> None:
    flow = media_flow(final=CLOSED)
    flow.start(T0)
    assert flow.timer == "prompt"
    last = flow.handle(TimerFired("prompt", T0 + 120))[-1]
    assert isinstance(last, Finished)
    assert last.outcome is Outcome.MISSED


def test_caller_hanging_up_during_the_announcement() -> None:
    flow = media_flow(final=CLOSED)
    flow.start(T0)
    assert flow.handle(CallerGone(False, T0 + 2)) == [
        CancelTimer("prompt"),
        StopPlayback(CALLER),
        Finished(Outcome.MISSED, None, "caller", 200, T0 + 2, "announcement"),
    ]


def test_without_media_services_the_old_rejection_stays() -> None:
    flow = CallFlow(call(), plan(final=CLOSED))
    assert flow.start(T0)[0] == RejectCaller(
        480, "Temporarily Unavailable (announcement not available yet)"
    )


# ------------------------------------------------------------------ welcome (early media)

WELCOME = MediaOptions(welcome="Willkommen bei Tischlerei Müller.", prompt_guard_s=60)


def test_welcome_plays_as_early_media_then_the_first_step_rings() -> None:
    flow = media_flow(Step((DESK,), 15), media=WELCOME)
    assert flow.start(T0) == [
        OpenEarlyMedia(),
        PlayPrompt(CALLER, "Willkommen bei Tischlerei Müller."),
        StartTimer("prompt", 60),
    ]
    assert flow.state is CallState.DIALLING
    assert flow.legs == {}
    commands = flow.handle(PlaybackDone(CALLER, T0 + 3))
    assert commands[0] == CancelTimer("prompt")
    assert isinstance(commands[1], Dial)
    assert commands[1].target == DESK
    assert flow.handle(PlaybackDone(CALLER, T0 + 4)) == []  # a late second report


def test_welcome_guard_timer_starts_the_steps() -> None:
    flow = media_flow(Step((DESK,), 15), media=WELCOME)
    flow.start(T0)
    commands = flow.handle(TimerFired("prompt", T0 + 60))
    assert [type(c) for c in commands] == [Dial, StartTimer]


def test_caller_leaving_during_the_welcome_is_cancelled() -> None:
    flow = media_flow(Step((DESK,), 15), media=WELCOME)
    flow.start(T0)
    assert flow.handle(CallerGone(True, T0 + 1)) == [
        CancelTimer("prompt"),
        StopPlayback(CALLER),
        Finished(Outcome.CANCELLED, None, "caller", 487, T0 + 1),
    ]


def test_shutdown_during_the_welcome_rejects_with_503() -> None:
    flow = media_flow(Step((DESK,), 15), media=WELCOME)
    flow.start(T0)
    assert flow.handle(Shutdown(T0 + 1)) == [
        CancelTimer("prompt"),
        StopPlayback(CALLER),
        RejectCaller(503, "Service Unavailable"),
        Finished(Outcome.ABORTED, None, "switch", 503, T0 + 1),
    ]


# ------------------------------------------------------------------ voicemail


def test_voicemail_greets_beeps_records_until_the_caller_hangs_up() -> None:
    flow = media_flow(Step((DESK,), 15), final=VOICEMAIL)
    flow.start(T0)
    commands = flow.handle(failed_busy(1))
    assert commands[-3:] == [
        AnswerCaller(),
        PlayPrompt(
            CALLER,
            "Tischlerei Müller. Leider ist gerade niemand erreichbar. "
            "Bitte sprechen Sie nach dem Signalton.",
            beep=True,
        ),
        StartTimer("prompt", 120),
    ]
    assert flow.handle(PlaybackDone(CALLER, T0 + 9)) == [
        CancelTimer("prompt"),
        RecordCaller(60),
        StartTimer("recording", 60),
    ]
    assert flow.timer == "recording"
    assert flow.handle(CallerGone(False, T0 + 30)) == [
        CancelTimer("recording"),
        StopRecording(),
        Finished(Outcome.MISSED, None, "caller", 200, T0 + 30, "voicemail"),
    ]


def test_voicemail_stops_at_its_longest_length() -> None:
    flow = media_flow(final=VOICEMAIL)
    flow.start(T0)
    flow.handle(PlaybackDone(CALLER, T0 + 9, played=False))
    assert flow.handle(TimerFired("recording", T0 + 69)) == [
        StopRecording(),
        HangUpCaller(),
        Finished(Outcome.MISSED, None, "switch", 200, T0 + 69, "voicemail"),
    ]


def test_shutdown_while_recording_keeps_the_message() -> None:
    flow = media_flow(final=VOICEMAIL)
    flow.start(T0)
    flow.handle(PlaybackDone(CALLER, T0 + 9))
    assert flow.handle(Shutdown(T0 + 10)) == [
        CancelTimer("recording"),
        StopRecording(),
        HangUpCaller(),
        Finished(Outcome.ABORTED, None, "switch", 200, T0 + 10, "voicemail"),
    ]


def test_playback_done_of_an_old_prompt_is_ignored_while_recording() -> None:
    flow = media_flow(final=VOICEMAIL)
    flow.start(T0)
    flow.handle(PlaybackDone(CALLER, T0 + 9))
    assert flow.handle(PlaybackDone(CALLER, T0 + 10)) == []
    assert flow.state is CallState.MEDIA


def failed_busy(leg: int) -> LegFailed:
    return LegFailed(leg, 486, "Busy Here", Failure.BUSY, T0 + 5)


# ------------------------------------------------------------------ answer confirmation

PROMPT = "Anruf für Tischlerei Müller. Drücken Sie die 1, um das Gespräch anzunehmen."


def test_confirm_step_prompts_the_callee_and_bridges_on_1() -> None:
    flow = media_flow(Step((MOBILE,), 20, confirm=True), Step((HOME,), 20))
    flow.start(T0)
    assert flow.handle(LegAnswered(1, T0 + 5)) == [
        PlayPrompt(1, PROMPT),
        StartTimer("confirm-1", 10),
    ]
    assert flow.legs[1].state is LegState.CONFIRMING
    states = [flow.state]  # the caller still hears ringing
    assert flow.handle(ConfirmDigit(1, "5", T0 + 6)) == []
    assert flow.handle(LegAnswered(1, T0 + 6)) == []  # a retransmitted 200
    assert flow.handle(ConfirmDigit(1, "1", T0 + 7)) == [
        StopPlayback(1),
        AnswerAndBridge(1),
        CancelTimer("confirm-1"),
        CancelTimer("step-1"),
    ]
    states.append(flow.state)
    assert states == [CallState.DIALLING, CallState.BRIDGED]
    assert flow.legs[1].answered_at == T0 + 5


def test_no_digit_in_time_counts_as_no_answer_and_the_next_step_rings() -> None:
    flow = media_flow(Step((MOBILE,), 20, confirm=True), Step((HOME,), 20))
    flow.start(T0)
    flow.handle(LegAnswered(1, T0 + 5))
    commands = flow.handle(TimerFired("confirm-1", T0 + 15))
    assert commands[:2] == [Cancel(1), CancelTimer("step-1")]
    assert [c.leg for c in commands if isinstance(c, Dial)] == [2]
    assert flow.legs[1].state is LegState.CANCELLED
    assert flow.legs[1].failure is Failure.NO_ANSWER


def test_callee_hanging_up_instead_of_pressing_1_moves_on() -> None:
    flow = media_flow(Step((MOBILE,), 20, confirm=True), final=VOICEMAIL)
    flow.start(T0)
    flow.handle(LegAnswered(1, T0 + 5))
    commands = flow.handle(LegHungUp(1, T0 + 7))
    assert commands[:3] == [CancelTimer("confirm-1"), CancelTimer("step-1"), AnswerCaller()]
    assert flow.state is CallState.MEDIA


def test_round_timer_while_confirming_waits_for_the_confirming_leg() -> None:
    flow = media_flow(Step((MOBILE, DESK), 20, parallel=True, confirm=True), Step((HOME,), 20))
    flow.start(T0)
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(TimerFired("step-1", T0 + 20)) == [Cancel(2)]
    assert flow.timer == "confirm-1"
    assert flow.handle(ConfirmDigit(1, "1", T0 + 21)) == [
        StopPlayback(1),
        AnswerAndBridge(1),
        CancelTimer("confirm-1"),
    ]


def test_first_of_two_confirming_legs_to_press_1_wins() -> None:
    flow = media_flow(Step((MOBILE, DESK), 20, parallel=True, confirm=True))
    flow.start(T0)
    flow.handle(LegAnswered(1, T0 + 5))
    flow.handle(LegAnswered(2, T0 + 6))
    assert flow.handle(ConfirmDigit(2, "1", T0 + 8)) == [
        StopPlayback(2),
        AnswerAndBridge(2),
        CancelTimer("confirm-2"),
        Cancel(1),
        CancelTimer("confirm-1"),
        CancelTimer("step-1"),
    ]


def test_caller_leaving_while_the_callee_confirms_ends_both() -> None:
    flow = media_flow(Step((MOBILE,), 20, confirm=True))
    flow.start(T0)
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(CallerGone(True, T0 + 6)) == [
        Cancel(1),
        CancelTimer("confirm-1"),
        CancelTimer("step-1"),
        Finished(Outcome.CANCELLED, None, "caller", 487, T0 + 6),
    ]


def test_whisper_plays_the_business_name_to_the_service_then_bridges() -> None:
    flow = media_flow(Step((HOME,), 20), media=MediaOptions(whisper=True))
    flow.start(T0)
    assert flow.handle(LegAnswered(1, T0 + 5)) == [
        PlayPrompt(1, "Anruf für Tischlerei Müller."),
        StartTimer("confirm-1", 10),
    ]
    assert flow.handle(ConfirmDigit(1, "1", T0 + 6)) == []  # no digit needed
    assert flow.handle(PlaybackDone(1, T0 + 7)) == [
        AnswerAndBridge(1),
        CancelTimer("confirm-1"),
        CancelTimer("step-1"),
    ]


def test_whisper_is_only_for_the_service_and_a_lost_end_still_connects() -> None:
    flow = media_flow(Step((DESK,), 20), Step((HOME,), 20), media=MediaOptions(whisper=True))
    flow.start(T0)
    assert flow.handle(LegAnswered(1, T0 + 5))[0] == AnswerAndBridge(1)
    flow = media_flow(Step((HOME,), 20), media=MediaOptions(whisper=True))
    flow.start(T0)
    flow.handle(LegAnswered(1, T0 + 5))
    assert flow.handle(TimerFired("confirm-1", T0 + 15)) == [
        AnswerAndBridge(1),
        CancelTimer("step-1"),
    ]


# ------------------------------------------------------------------ random sequences


def draw_media_event(data: st.DataObject, flow: CallFlow, legs: list[int], at: int) -> Event:
    kind = data.draw(st.sampled_from(["base", "base", "base", "playback", "digit", "media_timer"]))
    if kind == "playback":
        return PlaybackDone(data.draw(st.sampled_from([CALLER, *legs])), at)
    if kind == "digit" and legs:
        return ConfirmDigit(data.draw(st.sampled_from(legs)), data.draw(st.sampled_from("12")), at)
    if kind == "media_timer":
        return TimerFired(data.draw(st.sampled_from(["prompt", "recording", "confirm-1"])), at)
    return draw_event(data, _Dialled(legs), at)


class _Dialled:
    def __init__(self, legs: list[int]) -> None:
        self.dialled = legs
        self.started_timers = {"step-1", "step-2.1", "step-2.2"}


@settings(max_examples=150, deadline=None)
@given(decision=decisions, data=st.data(), whisper=st.booleans(), welcome=st.booleans())
def test_random_media_sequences_end_once_and_leave_nothing_open(
    decision: Decision, data: st.DataObject, whisper: bool, welcome: bool
) -> None:
    options = MediaOptions(whisper=whisper, welcome="Willkommen." if welcome else None)
    flow = CallFlow(call(), decision, options)
    commands: list[Command] = list(flow.start(T0))
    at = T0
    for _ in range(data.draw(st.integers(0, 30))):
        at += 1
        legs = sorted(flow.legs)
        before = flow.state
        event = draw_media_event(data, flow, legs, at)
        out = flow.handle(event)
        if flow.state is not before:
            assert flow.state in CALL_TRANSITIONS[before][type(event)], (before, event)
        commands.extend(out)
    for _ in range(30):
        if flow.finished:
            break
        at += 1
        timer = flow.timer
        commands.extend(
            flow.handle(CallerGone(False, at) if timer is None else TimerFired(timer, at))
        )
    assert flow.finished
    finished = [c for c in commands if isinstance(c, Finished)]
    assert len(finished) == 1
    started = {c.timer for c in commands if isinstance(c, StartTimer)}
    stopped = {c.timer for c in commands if isinstance(c, CancelTimer)}
    assert stopped <= started
    for view in flow.legs.values():
        assert view.state not in (LegState.DIALLING, LegState.RINGING, LegState.CONFIRMING)
    if any(isinstance(c, RecordCaller) for c in commands):
        assert sum(isinstance(c, StopRecording) for c in commands) == 1
    if welcome:
        assert commands[0] == OpenEarlyMedia()
    if any(isinstance(c, AnswerCaller) for c in commands):
        assert finished[0].outcome in (Outcome.MISSED, Outcome.ABORTED)
        assert finished[0].final == decision.final.kind.value
        assert not any(isinstance(c, AnswerAndBridge) for c in commands)


@pytest.mark.parametrize("kind", [FinalKind.VOICEMAIL, FinalKind.ANNOUNCEMENT])
def test_media_final_records_its_kind(kind: FinalKind) -> None:
    flow = media_flow(final=Final(kind))
    flow.start(T0)
    flow.handle(CallerGone(False, T0 + 1))
    assert flow.result is not None
    assert flow.result.final == kind.value
