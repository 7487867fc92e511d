"""The queue step of a call flow (issue 19): waiting with music, members rung when told.

Theory of operation
-------------------
A step with ``Step.queue`` set does not ring anyone itself. The flow emits
:class:`~switch.call.events.JoinQueue` and waits in :attr:`CallState.QUEUED`, the caller
not yet answered: a queue that refuses it (full) leaves the caller unanswered, so the
overflow (the next step, voicemail) runs or, with none, a 503 with Retry-After and a
Reason goes out before anything is answered. The
queue lives in the supervisor (switch/call/queue.py, switch/supervisor/queues.py); what it
decides comes back as events:

* :class:`QueueStatus` — the place and the expected wait: the first one answers the
  caller (200) and starts the announcement (position, wait, the callback hint), then
  music and announcement alternate (each PlaybackDone starts the other), always with the
  latest status;
* :class:`QueueOffered` — ring this member: a Dial and the timer ``offer-<leg>``; the 200
  bridges the caller (StopPlayback, AnswerAndBridge, :class:`QueueAnswered`); a failure or
  the timer gives :class:`QueueOfferFailed` and the caller keeps waiting;
* :class:`QueueGaveUp` — maximum wait, queue full, nobody logged in: the rule's next step
  (or its final action, e.g. voicemail) runs, as after a failed step;
* :class:`CallerDigit` — the callback digit: :class:`RequestCallback`, a short confirmation,
  hang-up (Finished MISSED, final "callback").

The caller hanging up while waiting is :attr:`Outcome.ABANDONED`. A guard timer ``queue``
(the step's timeout) ends the wait if the supervisor never answers.

This is a mixin of :class:`~switch.call.callflow.CallFlow` over
:class:`~switch.call.flowbase.FlowBase`: it uses the flow's legs, its state table and its
step machinery (``_begin_step``), and adds nothing to the other states.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from rules.decision import Failure, FinalKind
from switch.call.events import (
    CALLER,
    AnswerAndBridge,
    AnswerCaller,
    CallerDigit,
    CallerGone,
    Cancel,
    CancelTimer,
    Command,
    Dial,
    Event,
    Finished,
    HangUpCaller,
    JoinQueue,
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegRinging,
    Outcome,
    PlaybackDone,
    PlayMusic,
    PlayPrompt,
    QueueAnswered,
    QueueGaveUp,
    QueueOffered,
    QueueOfferFailed,
    QueueStatus,
    RejectCaller,
    RequestCallback,
    Shutdown,
    StartTimer,
    StopPlayback,
    TimerFired,
)
from switch.call.flowbase import FlowBase, LegView
from switch.call.prompts import (
    ANONYMOUS,
    QUEUE_CALLBACK_TAKEN,
    QUEUE_MUSIC,
    WHISPER_PROMPT,
    queue_announcement,
)
from switch.call.states import UNANSWERED, CallState, LegInput, LegState, MediaPhase

QUEUE_TIMER: Final = "queue"
OFFER_PREFIX: Final = "offer-"
WHISPER_PREFIX: Final = "whisper-"
QUEUE_FULL: Final = "Warteschlange voll"
"""The reason phrase (and Reason header text) of the 503 for a full queue."""


@dataclass(slots=True)
class QueueWait:
    """What the flow knows while its caller waits in a queue."""

    name: str
    step: int
    offers: dict[int, str] = field(default_factory=dict)  # leg -> member
    status: QueueStatus | None = None
    audio: str | None = None  # "announce" or "music" while one plays
    whispering: int | None = None  # the answered offer leg hearing the business name
    answered: bool = False  # the caller got our 200 (the queue took it)


class QueueFlow(FlowBase):
    """The QUEUED state of :class:`~switch.call.callflow.CallFlow` (module docstring)."""

    _queue: QueueWait | None = None  # set exactly while QUEUED
    _final_label: str | None = None  # Finished.final when a queue step ended the call

    if TYPE_CHECKING:

        def _begin_step(self, index: int, at: int) -> list[Command]: ...

    def _finish(self, outcome: Outcome, hung_up_by: str, sip_status: int, at: int) -> Finished:
        result = super()._finish(outcome, hung_up_by, sip_status, at)
        if self._final_label is not None:
            self.result = result = replace(result, final=self._final_label)
        return result

    # ------------------------------------------------------------------ entering

    def _enter_queue(self, index: int, at: int) -> list[Command]:
        step = self.decision.steps[index]
        assert step.queue is not None
        self._enter(CallState.QUEUED)
        self._queue = QueueWait(step.queue, index)
        return [JoinQueue(step.queue), StartTimer(QUEUE_TIMER, step.timeout)]

    # ------------------------------------------------------------------ events

    def _queue_event(self, event: Event) -> list[Command]:
        wait = self._queue
        assert wait is not None
        match event:
            case QueueStatus():
                wait.status = event
                commands: list[Command] = [] if wait.answered else [AnswerCaller()]
                wait.answered = True  # the queue took the caller
                if wait.audio is None:
                    commands.extend(self._announce(wait))
                return commands
            case QueueOffered():
                return self._offer(wait, event)
            case LegRinging():
                view = self._legs[event.leg]
                if view.state in UNANSWERED:
                    self._move(view, LegInput.RINGING, ringing_at=event.at)
                return []
            case LegAnswered():
                return self._offer_answered(wait, event)
            case LegFailed() | LegHungUp() if event.leg == wait.whispering:
                return self._whisper_over(wait, event.leg, event.at, LegInput.HANG_UP)
            case LegFailed():
                return self._offer_over(wait, event.leg, event.at, LegInput.FAIL, timer=True)
            case PlaybackDone() if event.leg != CALLER and event.leg == wait.whispering:
                return self._bridge_offer(wait, event.leg, event.at, whispered=True)
            case TimerFired() if event.timer == f"{WHISPER_PREFIX}{wait.whispering}":
                assert wait.whispering is not None
                return self._whisper_over(wait, wait.whispering, event.at, LegInput.CANCEL)
            case TimerFired():
                if event.timer == QUEUE_TIMER:
                    return self._give_up(wait, event.at, timer_fired=True)
                leg = _offer_leg(event.timer)
                if leg is None:
                    return []
                return self._offer_over(wait, leg, event.at, LegInput.CANCEL, timer=False)
            case PlaybackDone() if event.leg == CALLER:
                if not event.played and wait.audio != "announce":
                    wait.audio = None  # no music to play: the next status tries again
                    return []
                if wait.audio == "announce":  # heard (or not ready yet): music
                    wait.audio = "music"
                    return [PlayMusic(QUEUE_MUSIC)]
                return self._announce(wait)
            case QueueGaveUp() if event.reason == "full" and self._refuse_full(wait):
                commands = self._leave(wait)
                commands.append(RejectCaller(503, QUEUE_FULL))  # + Retry-After, Reason
                commands.append(self._finish(Outcome.REJECTED, "switch", 503, event.at))
                return commands
            case QueueGaveUp():
                return self._give_up(wait, event.at)
            case CallerDigit():
                return self._digit(wait, event)
            case CallerGone():
                status = 200 if wait.answered else 487
                commands = self._leave(wait)
                commands.append(self._finish(Outcome.ABANDONED, "caller", status, event.at))
                return commands
            case Shutdown():
                answered = wait.answered
                commands = self._leave(wait)
                if answered:
                    commands.append(HangUpCaller())
                else:
                    commands.append(RejectCaller(503, "Service Unavailable"))
                status = 200 if answered else 503
                commands.append(self._finish(Outcome.ABORTED, "switch", status, event.at))
                return commands
        return []  # a confirm digit, a callee's BYE of a leg that never bridged

    def _announce(self, wait: QueueWait) -> list[Command]:
        if self.media is None or wait.status is None:
            return []
        status = wait.status
        texts = queue_announcement(status.position, status.expected_wait_s, status.callback_digit)
        wait.audio = "announce"
        return [PlayPrompt(CALLER, texts[0], then=texts[1:])]

    def _offer(self, wait: QueueWait, event: QueueOffered) -> list[Command]:
        leg = len(self._legs) + 1
        self._legs[leg] = LegView(leg, event.target, wait.step, LegState.DIALLING)
        wait.offers[leg] = event.member
        display = f"{self.decision.announce_as}: {self.call.caller or ANONYMOUS}"
        return [
            Dial(leg, event.target, display, self.call.caller, self.call.called),
            StartTimer(_offer_timer(leg), event.timeout_s),
        ]

    def _offer_answered(self, wait: QueueWait, event: LegAnswered) -> list[Command]:
        member = wait.offers.get(event.leg)
        view = self._legs[event.leg]
        if member is None or view.state not in UNANSWERED or wait.whispering is not None:
            return [Cancel(event.leg)]  # a 200 on an offer we gave up (or a second one)
        if self.media is None or not self.media.whisper:
            return self._bridge_offer(wait, event.leg, event.at)
        # The service hears the business name first (MediaOptions.whisper); the others stop.
        commands: list[Command] = [CancelTimer(_offer_timer(event.leg))]
        for leg in [leg for leg in wait.offers if leg != event.leg]:
            commands.append(CancelTimer(_offer_timer(leg)))
            commands.extend(self._offer_over(wait, leg, event.at, LegInput.CANCEL, timer=False))
        self._move(view, LegInput.PROMPT, answered_at=event.at)
        wait.whispering = event.leg
        text = WHISPER_PROMPT.format(business=self.decision.announce_as)
        commands.append(PlayPrompt(event.leg, text))
        commands.append(StartTimer(f"{WHISPER_PREFIX}{event.leg}", self.media.confirm_timeout_s))
        return commands

    def _bridge_offer(
        self, wait: QueueWait, leg: int, at: int, *, whispered: bool = False
    ) -> list[Command]:
        member = wait.offers.pop(leg)
        view = self._legs[leg]
        commands: list[Command] = [
            CancelTimer(f"{WHISPER_PREFIX}{leg}") if whispered else CancelTimer(_offer_timer(leg))
        ]
        wait.whispering = None
        commands.extend(self._leave(wait))
        if whispered:
            self._move(view, LegInput.ANSWER)  # answered_at is the member's 200
        else:
            self._move(view, LegInput.ANSWER, answered_at=at)
        self._answered_leg = leg
        self._enter(CallState.BRIDGED)
        commands.append(QueueAnswered(wait.name, member))  # before the answered report
        commands.append(AnswerAndBridge(leg))
        return commands

    def _whisper_over(self, wait: QueueWait, leg: int, at: int, move: LegInput) -> list[Command]:
        """The member hung up (or the whisper never ended): she counts as not answering."""
        member = wait.offers.pop(leg)
        wait.whispering = None
        view = self._legs[leg]
        self._move(view, move, ended_at=at, failure=Failure.NO_ANSWER)
        commands: list[Command] = [CancelTimer(f"{WHISPER_PREFIX}{leg}")]
        if move is LegInput.CANCEL:
            commands.append(Cancel(leg))
        commands.append(QueueOfferFailed(wait.name, member))
        return commands

    def _offer_over(
        self, wait: QueueWait, leg: int, at: int, move: LegInput, *, timer: bool
    ) -> list[Command]:
        member = wait.offers.pop(leg, None)
        if member is None:
            return []
        view = self._legs[leg]
        commands: list[Command] = [CancelTimer(_offer_timer(leg))] if timer else [Cancel(leg)]
        if view.state in UNANSWERED:
            self._move(view, move, ended_at=at, failure=Failure.NO_ANSWER)
        commands.append(QueueOfferFailed(wait.name, member))
        return commands

    def _digit(self, wait: QueueWait, event: CallerDigit) -> list[Command]:
        status = wait.status
        wanted = status.callback_digit if status is not None else None
        if not wanted or event.digit != wanted or not self.call.caller:
            return []  # no callback without a number to call
        commands = self._leave(wait)
        commands.append(RequestCallback(wait.name, self.call.caller))
        self._final_label = "callback"
        self._enter(CallState.MEDIA)
        if self.media is None:
            commands.append(HangUpCaller())
            commands.append(self._finish(Outcome.MISSED, "switch", 200, event.at))
            return commands
        self._enter_media(MediaPhase.ANNOUNCEMENT)
        self._media_timer = "prompt"
        commands.append(PlayPrompt(CALLER, QUEUE_CALLBACK_TAKEN))
        commands.append(StartTimer("prompt", self.media.prompt_guard_s))
        return commands

    def _refuse_full(self, wait: QueueWait) -> bool:
        """A full queue before the caller was answered, and nothing after the queue step
        but a plain reject: the caller gets 503 (with Retry-After) rather than that."""
        rest = self.decision.steps[wait.step + 1 :]
        nothing_after = all(not s.targets and s.queue is None for s in rest)
        return not wait.answered and nothing_after and self.decision.final.kind is FinalKind.REJECT

    def _give_up(self, wait: QueueWait, at: int, *, timer_fired: bool = False) -> list[Command]:
        commands = self._leave(wait, timer_fired=timer_fired)
        self._enter(CallState.DIALLING)  # the next step rings, or the final action runs
        commands.extend(self._begin_step(wait.step + 1, at))
        return commands

    def _leave(self, wait: QueueWait, *, timer_fired: bool = False) -> list[Command]:
        """Stop waiting: the offers still ringing end, the music stops, the guard goes."""
        commands: list[Command] = []
        for leg in list(wait.offers):
            del wait.offers[leg]
            view = self._legs[leg]
            if view.state in UNANSWERED or view.state is LegState.CONFIRMING:
                self._move(view, LegInput.CANCEL)
            commands.append(Cancel(leg))
            commands.append(CancelTimer(_offer_timer(leg)))
            if leg == wait.whispering:
                commands.append(CancelTimer(f"{WHISPER_PREFIX}{leg}"))
        wait.whispering = None
        if not timer_fired:
            commands.append(CancelTimer(QUEUE_TIMER))
        if wait.audio is not None:
            commands.append(StopPlayback(CALLER))
            wait.audio = None
        self._queue = None
        return commands


def _offer_timer(leg: int) -> str:
    return f"{OFFER_PREFIX}{leg}"


def _offer_leg(timer: str) -> int | None:
    number = timer.removeprefix(OFFER_PREFIX)
    return int(number) if timer.startswith(OFFER_PREFIX) and number.isdigit() else None


__all__ = ["OFFER_PREFIX", "QUEUE_TIMER", "QueueFlow", "QueueWait"]
