"""The queue step of the call flow (switch/call/queueflow.py), without any I/O."""

from __future__ import annotations

from pathlib import Path

from rules.decision import Failure, Final, FinalKind, Step, Target
from switch.call.callflow import CallFlow
from switch.call.events import (
    CALLER,
    AnswerAndBridge,
    AnswerCaller,
    CallerDigit,
    CallerGone,
    Cancel,
    Dial,
    Finished,
    HangUpCaller,
    JoinQueue,
    LegAnswered,
    LegFailed,
    Outcome,
    PlaybackDone,
    PlayMusic,
    PlayPrompt,
    QueueAnswered,
    QueueGaveUp,
    QueueOffered,
    QueueOfferFailed,
    QueueStatus,
    RecordCaller,
    RejectCaller,
    RequestCallback,
    Shutdown,
    StartTimer,
    StopPlayback,
    TimerFired,
)
from switch.call.prompts import QUEUE_CALLBACK_TAKEN, MediaOptions
from switch.call.queueflow import QUEUE_FULL
from switch.call.states import CallState
from tests.helpers.callflow import DESK, call, plan

QUEUE = Step((), 3600.0, queue="heimbuero")
ANNA = Target("heimbuero.anna", "sip:anna@office", "anna", "heimbuero", True)
BEN = Target("heimbuero.ben", "sip:ben@office", "ben", "heimbuero", True)
VOICEMAIL = Final(FinalKind.VOICEMAIL, 480, "Temporarily Unavailable")


def queued(media: MediaOptions | None = None, final: Final = VOICEMAIL) -> CallFlow:
    flow = CallFlow(call(), plan(QUEUE, final=final), media or MediaOptions())
    assert flow.start(1) == [JoinQueue("heimbuero"), StartTimer("queue", 3600.0)]
    assert flow.state is CallState.QUEUED
    return flow


REJECT = Final(FinalKind.REJECT, 480, "Temporarily Unavailable")


def test_the_caller_is_answered_only_when_the_queue_takes_it() -> None:
    flow = queued()
    first = flow.handle(QueueStatus(1, 10, 2))
    assert first[0] == AnswerCaller()
    assert isinstance(first[1], PlayPrompt)
    assert AnswerCaller() not in flow.handle(QueueStatus(1, 10, 3))


def test_a_full_queue_refuses_before_answering_with_503_or_runs_the_overflow() -> None:
    flow = queued(final=REJECT)  # nothing after the queue step: 503 (Retry-After in the worker)
    commands = flow.handle(QueueGaveUp("full", 2))
    assert AnswerCaller() not in commands
    assert RejectCaller(503, "Warteschlange voll") in commands
    (done,) = [c for c in commands if isinstance(c, Finished)]
    assert (done.outcome, done.sip_status) == (Outcome.REJECTED, 503)
    flow = queued()  # voicemail after the queue step: that instead (it answers itself)
    commands = flow.handle(QueueGaveUp("full", 2))
    assert not any(isinstance(c, RejectCaller) for c in commands)
    assert AnswerCaller() in commands
    flow = queued(final=REJECT)  # max wait after answering: the plan's final as before
    flow.handle(QueueStatus(1, 10, 2))
    assert RejectCaller(503, "Warteschlange voll") not in flow.handle(QueueGaveUp("max_wait", 3))


def test_unanswered_queued_caller_gone_is_487_and_shutdown_503() -> None:
    flow = queued()
    (done,) = [c for c in flow.handle(CallerGone(True, 2)) if isinstance(c, Finished)]
    assert (done.outcome, done.sip_status) == (Outcome.ABANDONED, 487)
    flow = queued()
    commands = flow.handle(Shutdown(2))
    assert RejectCaller(503, "Service Unavailable") in commands
    assert HangUpCaller() not in commands


def test_the_caller_hears_its_position_then_music_then_the_position_again() -> None:
    flow = queued()
    answer, play = flow.handle(QueueStatus(3, 130, 2, callback_digit="5"))
    assert answer == AnswerCaller()
    assert isinstance(play, PlayPrompt)
    assert play.text == "Sie sind an Position 3 in der Warteschlange."
    assert play.then == (
        "Die Wartezeit beträgt etwa 2 Minuten.",
        "Wenn wir Sie zurückrufen sollen, drücken Sie die 5.",
    )
    assert flow.handle(QueueStatus(2, 60, 3, callback_digit="5")) == []  # no interruption
    assert flow.handle(PlaybackDone(CALLER, 4)) == [PlayMusic()]
    (again,) = flow.handle(PlaybackDone(CALLER, 5))
    assert isinstance(again, PlayPrompt)
    assert again.text == "Sie sind an Position 2 in der Warteschlange."
    assert again.then[0] == "Die Wartezeit beträgt etwa eine Minute."


def test_an_offered_member_answers_and_is_bridged() -> None:
    flow = queued()
    flow.handle(QueueStatus(1, 10, 2))
    dial, timer = flow.handle(QueueOffered("anna", ANNA, 15.0, 3))
    assert isinstance(dial, Dial)
    assert dial.target == ANNA
    assert timer == StartTimer("offer-1", 15.0)
    commands = flow.handle(LegAnswered(1, 4))
    assert AnswerAndBridge(1) in commands
    assert QueueAnswered("heimbuero", "anna") in commands
    assert StopPlayback(CALLER) in commands
    assert flow.state is CallState.BRIDGED
    assert flow.answered_leg == 1


def test_a_member_who_does_not_answer_is_reported_and_the_caller_waits_on() -> None:
    flow = queued()
    flow.handle(QueueOffered("anna", ANNA, 15.0, 3))
    commands = flow.handle(TimerFired("offer-1", 20))
    assert commands == [Cancel(1), QueueOfferFailed("heimbuero", "anna")]
    flow.handle(QueueOffered("ben", BEN, 15.0, 21))
    commands = flow.handle(LegFailed(2, 486, "Busy Here", Failure.BUSY, 22))
    assert QueueOfferFailed("heimbuero", "ben") in commands
    assert flow.state is CallState.QUEUED
    assert flow.handle(LegAnswered(1, 23)) == [Cancel(1)]  # a late 200 of anna's leg


def test_max_wait_sends_the_caller_to_voicemail() -> None:
    flow = queued()
    flow.handle(QueueStatus(1, 10, 2))
    commands = flow.handle(QueueGaveUp("max_wait", 300))
    assert StopPlayback(CALLER) in commands
    assert any(isinstance(c, PlayPrompt) and c.beep for c in commands)
    assert flow.state is CallState.MEDIA
    assert any(isinstance(c, RecordCaller) for c in flow.handle(PlaybackDone(CALLER, 301)))


def test_overflow_to_another_step_rings_it() -> None:
    flow = CallFlow(call(), plan(QUEUE, Step((DESK,), 20.0)), MediaOptions())
    flow.start(1)
    commands = flow.handle(TimerFired("queue", 3601))
    assert any(isinstance(c, Dial) and c.target == DESK for c in commands)
    assert flow.state is CallState.DIALLING


def test_the_callback_digit_leaves_a_request_and_says_goodbye() -> None:
    flow = queued()
    flow.handle(QueueStatus(2, 100, 2, callback_digit="5"))
    assert flow.handle(CallerDigit("7", 3)) == []
    commands = flow.handle(CallerDigit("5", 4))
    assert RequestCallback("heimbuero", "+4917112345678") in commands
    assert PlayPrompt(CALLER, QUEUE_CALLBACK_TAKEN) in commands
    end = flow.handle(PlaybackDone(CALLER, 9))
    assert HangUpCaller() in end
    assert flow.result is not None
    assert (flow.result.outcome, flow.result.final) == (Outcome.MISSED, "callback")


def test_no_callback_for_an_anonymous_caller_or_without_media() -> None:
    flow = CallFlow(call(None), plan(QUEUE), MediaOptions())
    flow.start(1)
    flow.handle(QueueStatus(1, 10, 2, callback_digit="5"))
    assert flow.handle(CallerDigit("5", 3)) == []
    flow = CallFlow(call(), plan(QUEUE), None)
    flow.start(1)
    assert flow.handle(QueueStatus(1, 10, 2, callback_digit="5")) == [AnswerCaller()]  # no media
    commands = flow.handle(CallerDigit("5", 3))
    assert isinstance(commands[-1], Finished)


def test_hanging_up_while_waiting_is_abandoned_and_shutdown_aborts() -> None:
    flow = queued()
    flow.handle(QueueOffered("anna", ANNA, 15.0, 3))
    commands = flow.handle(CallerGone(False, 10))
    assert Cancel(1) in commands
    assert flow.result is not None
    assert flow.result.outcome is Outcome.ABANDONED
    assert flow.handle(QueueOffered("ben", BEN, 15.0, 11)) == []  # the queue was late
    flow = queued()
    flow.handle(QueueStatus(1, 10, 4))  # answered: a BYE
    commands = flow.handle(Shutdown(5))
    assert HangUpCaller() in commands
    assert flow.result is not None
    assert flow.result.outcome is Outcome.ABORTED


def test_announcement_texts_at_their_bounds() -> None:
    from switch.call.prompts import queue_announcement, queue_texts

    assert queue_announcement(12, 20, None) == (
        "Vor Ihnen warten noch mehr als zehn Anrufer.",
        "Die Wartezeit beträgt weniger als eine Minute.",
    )
    assert queue_announcement(0, 1200, None)[1] == "Die Wartezeit beträgt mehr als zehn Minuten."
    for position in range(0, 13):
        for wait in (0, 45, 90, 300, 599, 700, 5000):
            assert set(queue_announcement(position, wait, "5")) <= set(queue_texts())


def test_with_whisper_the_member_hears_the_business_first() -> None:
    flow = queued(MediaOptions(whisper=True, confirm_timeout_s=8.0))
    flow.handle(QueueOffered("anna", ANNA, 15.0, 3))
    flow.handle(QueueOffered("ben", BEN, 15.0, 3))  # ring all: two offers
    commands = flow.handle(LegAnswered(1, 4))
    assert PlayPrompt(1, "Anruf für Tischlerei Müller.") in commands
    assert QueueOfferFailed("heimbuero", "ben") in commands  # ben's leg stops
    assert Cancel(2) in commands
    assert StartTimer("whisper-1", 8.0) in commands
    assert not any(isinstance(c, AnswerAndBridge) for c in commands)
    assert flow.handle(LegAnswered(2, 5)) == [Cancel(2)]  # too late
    commands = flow.handle(PlaybackDone(1, 6))
    assert AnswerAndBridge(1) in commands
    assert QueueAnswered("heimbuero", "anna") in commands
    assert flow.state is CallState.BRIDGED


def test_a_member_who_hangs_up_during_the_whisper_does_not_answer() -> None:
    from switch.call.events import LegHungUp

    flow = queued(MediaOptions(whisper=True))
    flow.handle(QueueOffered("anna", ANNA, 15.0, 3))
    flow.handle(LegAnswered(1, 4))
    commands = flow.handle(LegHungUp(1, 5))
    assert QueueOfferFailed("heimbuero", "anna") in commands
    assert flow.state is CallState.QUEUED
    flow.handle(QueueOffered("ben", BEN, 15.0, 6))
    flow.handle(LegAnswered(2, 7))
    commands = flow.handle(TimerFired("whisper-2", 20))
    assert Cancel(2) in commands
    assert QueueOfferFailed("heimbuero", "ben") in commands
    flow.handle(QueueOffered("anna", ANNA, 15.0, 21))
    flow.handle(LegAnswered(3, 22))
    commands = flow.handle(CallerGone(False, 23))  # the caller leaves during the whisper
    assert Cancel(3) in commands
    assert flow.result is not None
    assert flow.result.outcome is Outcome.ABANDONED


def test_the_edge_relays_the_full_queue_503_instead_of_failing_over() -> None:
    template = Path("switch/edge/templates/kamailio.cfg.tmpl").read_text(encoding="utf-8")
    assert f'text=\\"{QUEUE_FULL}\\"' in template
    assert f'send_reply("503", "{QUEUE_FULL}")' in template
