"""The lifecycle of one incoming call, as a sans-I/O state machine.

Theory of operation
-------------------
One :class:`CallFlow` exists per incoming call. It is built from the call
(:class:`~switch.call.events.IncomingCall`) and the routing plan that :func:`rules.decide`
returned for it (:class:`~rules.decision.Decision`). The I/O layer (switch/pjsua/)
calls :meth:`CallFlow.start` once, then :meth:`CallFlow.handle` with every event about
the call, and carries out the returned commands in order. Nothing here touches a
socket, a clock or pjsua2: time comes in as the ``at`` stamp of each event, and timers
are commands (:class:`~switch.call.events.StartTimer`) whose expiry comes back as an event.
This is h11's ``_state.py`` applied to a B2BUA: the whole lifecycle lives in this file.
The I/O layer must carry out a batch completely before it feeds the next event: a
Dial that fails at once comes back as a LegFailed *after* the batch, since the round's
StartTimer follows the Dials in the same batch and the failure may cancel it.

There are two layers of state.

*The call* (:class:`CallState`)::

    IDLE ──start()──▶ DIALLING ──first 200 (confirmed)──▶ BRIDGED
      │                  │   ╲                                  │
      │ nobody to ring   │    ╲ steps exhausted, final is       │ either side hangs up,
      │                  │     ╲ voicemail/announcement (media) │ Shutdown
      │                  │      ▼                               │
      │                  │    MEDIA ── prompt over, recording   │
      │                  │      │      over, caller gone        │
      │  steps exhausted,│      │                               │
      │  caller gone     ▼      ▼                               ▼
    FINISHED ◀───────────┴──────┴───────────────────────────────┘

:data:`CALL_TRANSITIONS` lists, per state, the events that can move the call and where
to. An event not listed for a state never changes the call state, though it may still
yield commands that keep the world consistent (a Cancel for a late 200).

*Each outbound leg* (:class:`LegState`, :data:`LEG_TRANSITIONS`): DIALLING (INVITE sent)
→ RINGING (18x seen) → BRIDGED (200, and it won), or FAILED (final error), CANCELLED
(we ended it: CANCEL before its answer, BYE after, RFC 3261 §9.1/§15) or HUNG_UP
(the callee ended a bridged leg). The last three are final.

Steps, rounds and timers
~~~~~~~~~~~~~~~~~~~~~~~~
The plan's steps run in order. A step rings in one or more *rounds*:

* a step with one target, or with ``parallel=True``, is one round: every target is
  dialled at once and the first answer wins;
* a step with several targets and ``parallel=False`` is a *hunt group*: one round per
  target, in plan order, each ringing alone for the step's ``timeout``.

Each round starts one timer, named ``step-N`` (one-round step) or ``step-N.K`` (hunt
position K), N and K counted from 1 as people count. A step runs once per call, so the
names never repeat and a :class:`~switch.call.events.TimerFired` from an earlier round is
recognised as stale and ignored. A round ends when all its legs have failed or when
its timer fires (the remaining legs are cancelled and count as NO_ANSWER); its timer
is cancelled when it ends any other way. A step with no targets is skipped.

When a step's last round ended, the step failed. Its failure is the most telling
failure among its legs, in this order: NO_ANSWER (somebody rang and nobody picked up),
BUSY, DECLINED, UNREACHABLE. ``Step.on(failure)`` then says NEXT (go on with the
next step) or FINAL (carry out the final action at once); after the last step the
final action runs anyway. In a parallel round one failure only ends that leg.

Towards the caller
~~~~~~~~~~~~~~~~~~
* Ringing is relayed once, on the first 18x of any live leg: as 183 with early media
  from that leg when it brought SDP and rings alone (a single-target step or a hunt
  position), as plain 180 otherwise, because in a parallel round it is unclear whose
  media to follow. Known limitation: when the followed leg then fails and the flow
  moves on, the caller keeps the (now silent) early-media session; playing ringback
  ourselves belongs to the media services of a later issue.
* The first 200 wins: AnswerAndBridge, Cancel for every other live leg, CancelTimer.
  A 200 without any 18x before it is normal (Kamailio with several children reorders
  them). A 200 on a leg we no longer want (glare in a parallel round, a 200 crossing
  our CANCEL, any 200 after the call finished) gets a Cancel, which the I/O layer
  turns into ACK + BYE (RFC 3261 §13.2.2.4, §15).
* The final action: ``REJECT`` answers the caller with ``Final.sip_status``/``reason``.
  The outcome is REJECTED when the plan rejected the call without dialling anyone,
  MISSED otherwise. ``VOICEMAIL`` and ``ANNOUNCEMENT`` need the media services
  (``CallFlow(media=MediaOptions(...))``); without them they reject with
  ``Final.sip_status`` (480) and a reason saying so.
* With media services the call enters MEDIA: AnswerCaller, PlayPrompt(CALLER, text)
  and a guard timer ``prompt``. On PlaybackDone (or the guard) an announcement ends
  with HangUpCaller + Finished(MISSED, final="announcement"); a voicemail greeting
  (with beep) goes on with RecordCaller and the timer ``recording`` (the plan's longest
  message); the caller's hang-up or that timer gives StopRecording and Finished(MISSED,
  final="voicemail"). Outcome MISSED with status 200: nobody took the call, the switch did.
* Answer confirmation (``Step.confirm``) and whisper (``MediaOptions.whisper``, for the
  secretarial service's targets): a callee's 200 does not bridge. The leg goes to
  CONFIRMING, hears PlayPrompt(leg, "Anruf für … Drücken Sie die 1 …") and gets the timer
  ``confirm-<leg>``. ConfirmDigit "1" bridges (other digits are ignored); a whisper
  bridges on its PlaybackDone. The timer, a hang-up or an error count the leg as
  NO_ANSWER (Cancel = BYE) and the round goes on: the caller never noticed, it still
  hears ringing. A round whose timer fires while a leg confirms waits for that leg.

Ending
~~~~~~
* CallerGone before the answer: Cancel every live leg, CancelTimer, Finished
  (CANCELLED, status 487: pjsua itself answers the caller's CANCEL with 487 Request
  Terminated, RFC 3261 §9.2, so no command is needed for it). After the answer:
  Cancel (= BYE) for the bridged leg, Finished(ANSWERED, hung up by the caller).
* LegHungUp of the bridged leg: HangUpCaller, Finished(ANSWERED, by the callee).
  A LegHungUp of any other leg is ignored (its round timer still ends it).
* Shutdown: Cancel every live leg, then RejectCaller(503) before the answer or
  HangUpCaller after it, Finished(ABORTED, by the switch).

Finished is emitted exactly once, as the last command of its batch. Afterwards
every event yields nothing, except a 200 on a leg, which gets its Cancel (above).

Errors: protocol surprises never raise. :class:`~switch.errors.CallFlowError` is raised
only for misuse by the driving code: an event naming a leg the flow never dialled,
``handle()`` before ``start()``, ``start()`` twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from rules.decision import Decision, Failure, FinalKind, OnFailure, Target
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
    IncomingCall,
    LegAnswered,
    LegFailed,
    LegHandedOver,
    LegHungUp,
    LegRinging,
    OpenEarlyMedia,
    Outcome,
    PlaybackDone,
    PlayPrompt,
    RecordCaller,
    RejectCaller,
    RelayRinging,
    Shutdown,
    StartTimer,
    StopPlayback,
    StopRecording,
    TimerFired,
    TransferJoined,
    TransferRequested,
)
from switch.call.prompts import (
    ANONYMOUS,
    CONFIRM_PROMPT,
    NOBODY_THERE,
    VOICEMAIL_GREETING,
    WHISPER_PROMPT,
    MediaOptions,
)
from switch.call.states import (
    CALL_TRANSITIONS,
    LEG_TRANSITIONS,
    MEDIA_TRANSITIONS,
    START,
    UNANSWERED,
    CallState,
    LegInput,
    LegState,
    MediaPhase,
)
from switch.call.transfer import TransferFlow
from switch.errors import CallFlowError

PROMPT_TIMER: Final = "prompt"
_NO_FINAL_YET: Final = frozenset({MediaPhase.NONE, MediaPhase.WELCOME})
RECORDING_TIMER: Final = "recording"


STEP_FAILURE_ORDER: Final = (
    Failure.NO_ANSWER,
    Failure.BUSY,
    Failure.DECLINED,
    Failure.UNREACHABLE,
)
"""Which leg failure names the failure of a whole step: the first one present here."""


@dataclass(frozen=True, slots=True)
class LegView:
    """What the flow knows about one outbound leg. Stamps are the ``at`` of events."""

    leg: int
    target: Target
    step: int  # index into Decision.steps, 0-based (as CallRecord's LegRecord.step)
    state: LegState
    ringing_at: int | None = None  # first 18x
    answered_at: int | None = None  # the 200 that won
    ended_at: int | None = None  # when it failed, we cancelled it, or the callee hung up
    status: int | None = None  # final SIP status reported by LegFailed (487 after a CANCEL)
    reason: str | None = None
    failure: Failure | None = None  # how it counted for its step (NO_ANSWER when timed out)


@dataclass(frozen=True, slots=True)
class _Round:
    """The legs ringing now: a whole step, or one position of a hunt group."""

    step: int
    position: int  # hunt position, 0 for a one-round step
    timer: str
    legs: tuple[int, ...]


class CallFlow(TransferFlow):
    """The sans-I/O state machine of one incoming call (see the module docstring).

    Transfers (``TransferRequested``, state TRANSFERRING) are in switch/call/transfer.py.
    """

    def __init__(
        self, call: IncomingCall, decision: Decision, media: MediaOptions | None = None
    ) -> None:
        self.call = call
        self.decision = decision
        self.media = media
        self._state = CallState.IDLE
        self._legs: dict[int, LegView] = {}
        self._round: _Round | None = None  # set exactly while DIALLING
        self._round_timer_live = False  # the round's timer has not fired yet
        self._prompting: dict[int, bool] = {}  # CONFIRMING leg -> it must press 1
        self._media_phase = MediaPhase.NONE
        self._trigger: type[Event] | str = START  # what moves the call now (for _enter)
        self._trigger_state = CallState.IDLE  # the call state when it came
        self._media_timer: str | None = None
        self._step_failures: list[Failure] = []
        self._ringing_relayed = False
        self._answered_leg: int | None = None
        self.result: Finished | None = None
        """The Finished command, once emitted (for records)."""

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> CallState:
        """Where the call is (:data:`~switch.call.states.CALL_TRANSITIONS`)."""
        return self._state

    @property
    def media_phase(self) -> MediaPhase:
        return self._media_phase

    @property
    def finished(self) -> bool:
        return self.state is CallState.FINISHED

    @property
    def answered_leg(self) -> int | None:
        """The leg bridged with the caller, once one answered (kept after the end)."""
        return self._answered_leg

    @property
    def legs(self) -> Mapping[int, LegView]:
        """Every outbound leg dialled so far, by leg id (a read-only view)."""
        return MappingProxyType(self._legs)

    @property
    def timer(self) -> str | None:
        """The timer that moves the call on next: the round's, a confirmation's, a prompt's."""
        if self._round is not None and self._round_timer_live:
            return self._round.timer
        if self._prompting:
            return _confirm_timer(next(iter(self._prompting)))
        return self._media_timer

    def start(self, at: int) -> list[Command]:
        """Begin the call: dial the first step, or carry out the final action at once."""
        if self.state is not CallState.IDLE:
            raise CallFlowError(
                f"call flow {self.call.call_id!r} started twice (state {self.state.value!r})",
                call_id=self.call.call_id,
            )
        self._trigger, self._trigger_state = START, self.state
        self._enter(CallState.DIALLING)
        if self.media is not None and self.media.welcome:
            # The welcome prompt as early media: the caller is not answered (RFC 3960).
            self._enter_media(MediaPhase.WELCOME)
            self._media_timer = PROMPT_TIMER
            return [
                OpenEarlyMedia(),
                PlayPrompt(CALLER, self.media.welcome),
                StartTimer(PROMPT_TIMER, self.media.prompt_guard_s),
            ]
        return self._begin_step(0, at)

    def handle(self, event: Event) -> list[Command]:
        """Feed one event; return the commands to carry out, in order."""
        if self.state is CallState.IDLE:
            raise CallFlowError(
                f"call flow {self.call.call_id!r} got {type(event).__name__} before start()",
                call_id=self.call.call_id,
            )
        self._trigger, self._trigger_state = type(event), self.state
        if self.state is CallState.TRANSFERRING:
            handled = self._xfer_event(event)
            if handled is not None:
                return handled
            if isinstance(event, CallerGone | Shutdown):
                commands = self._xfer_abort(event.at)
                if isinstance(event, Shutdown):
                    commands.append(HangUpCaller())
                    commands.append(self._finish(Outcome.ABORTED, "switch", 200, event.at))
                else:
                    commands.append(self._finish(Outcome.ANSWERED, "caller", 200, event.at))
                return commands
        match event:
            case TransferRequested():
                return self._on_transfer(event)
            case TransferJoined():  # attended transfer (RFC 3891), switch/call/transfer.py
                return self._on_joined(event)
            case LegHandedOver():
                return self._on_handed_over(event)
            case LegRinging():
                return self._on_ringing(event)
            case LegAnswered():
                return self._on_answered(event)
            case LegFailed():
                return self._on_failed(event)
            case LegHungUp():
                return self._on_hung_up(event)
            case CallerGone():
                return self._on_caller_gone(event)
            case TimerFired():
                return self._on_timer(event)
            case ConfirmDigit():
                return self._on_digit(event)
            case PlaybackDone():
                return self._on_playback_done(event)
            case _:
                return self._on_shutdown(event)

    # ------------------------------------------------------------------ event handlers

    def _on_ringing(self, event: LegRinging) -> list[Command]:
        view = self._leg(event.leg)
        if view.state not in UNANSWERED:
            return []  # a late 18x from a leg we gave up on
        ringing_at = event.at if view.ringing_at is None else view.ringing_at
        self._move(view, LegInput.RINGING, ringing_at=ringing_at)
        if self._ringing_relayed:
            return []
        self._ringing_relayed = True
        assert self._round is not None  # an unanswered leg means we are dialling
        if event.early_media and len(self._round.legs) == 1:
            return [RelayRinging(183, media_from_leg=event.leg)]
        return [RelayRinging(180)]

    def _on_answered(self, event: LegAnswered) -> list[Command]:
        view = self._leg(event.leg)
        if view.state in (LegState.BRIDGED, LegState.CONFIRMING):
            return []  # a retransmitted 200 of a leg we already took
        if view.state in UNANSWERED:
            step = self.decision.steps[view.step]
            media = self.media
            if media is not None and (step.confirm or (media.whisper and view.target.is_service)):
                return self._prompt_callee(view, step.confirm, event.at)
            return self._bridge(view, event.at)
        # A 200 we no longer want (glare, crossed our CANCEL, after the end): the I/O
        # layer ACKs and BYEs it on Cancel, RFC 3261 §13.2.2.4 and §15.
        return [Cancel(event.leg)]

    def _on_failed(self, event: LegFailed) -> list[Command]:
        view = self._leg(event.leg)
        if view.state is LegState.BRIDGED:
            return self._callee_gone(view, event.at)
        if view.state is LegState.CONFIRMING:
            return self._unconfirmed(view, LegInput.FAIL, event.at)
        if view.state is LegState.CANCELLED and view.status is None:
            # Normally 487 Request Terminated after our CANCEL (RFC 3261 §9.2): keep it
            # for the record, nothing else to do.
            self._legs[view.leg] = replace(view, status=event.status, reason=event.reason)
            return []
        if view.state not in UNANSWERED:
            return []  # a repeated report of a leg already accounted for
        self._move(
            view,
            LegInput.FAIL,
            ended_at=event.at,
            status=event.status,
            reason=event.reason,
            failure=event.failure,
        )
        self._step_failures.append(event.failure)
        if self._live_unanswered() or self._prompting:
            return []  # in a parallel round one failure just ends that leg
        return self._round_over(event.at)

    def _on_hung_up(self, event: LegHungUp) -> list[Command]:
        view = self._leg(event.leg)
        if view.state is LegState.CONFIRMING:
            return self._unconfirmed(view, LegInput.HANG_UP, event.at)
        if view.state is not LegState.BRIDGED:
            return []  # only the bridged leg's end matters; others are cancelled or timed out
        return self._callee_gone(view, event.at)

    def _on_caller_gone(self, event: CallerGone) -> list[Command]:
        if self._media_phase is MediaPhase.WELCOME:
            commands = self._end_welcome()
            commands.append(self._finish(Outcome.CANCELLED, "caller", 487, event.at))
            return commands
        if self._round is not None:
            commands = self._end_round(event.at)
            # pjsua answers the CANCEL and the INVITE (487) itself, RFC 3261 §9.2.
            commands.append(self._finish(Outcome.CANCELLED, "caller", 487, event.at))
            return commands
        if self.state is CallState.BRIDGED:
            view = self._bridged()
            self._move(view, LegInput.CANCEL, ended_at=event.at)
            return [Cancel(view.leg), self._finish(Outcome.ANSWERED, "caller", 200, event.at)]
        if self.state is CallState.MEDIA:
            commands = self._end_media()
            commands.append(self._finish(Outcome.MISSED, "caller", 200, event.at))
            return commands
        return []

    def _on_timer(self, event: TimerFired) -> list[Command]:
        if event.timer == self._media_timer:
            return self._media_timer_fired(event.at)
        leg = _confirm_leg(event.timer)
        if leg is not None and leg in self._prompting:
            view = self._legs[leg]
            if not self._prompting[leg]:
                # A whisper whose end was never reported: connect rather than lose the call.
                return self._bridge(view, event.at, timer_fired=True)
            commands: list[Command] = [Cancel(leg)]  # BYE: nobody pressed 1 in time
            commands.extend(self._unconfirmed(view, LegInput.CANCEL, event.at, timer_fired=True))
            return commands
        if self._round is None or event.timer != self._round.timer or not self._round_timer_live:
            return []  # stale: the round it belonged to has ended
        self._round_timer_live = False
        commands = self._cancel_unanswered(event.at, Failure.NO_ANSWER)
        if self._prompting:
            return commands  # an answered leg is still deciding: it ends the round
        commands.extend(self._round_over(event.at))
        return commands

    def _on_digit(self, event: ConfirmDigit) -> list[Command]:
        view = self._leg(event.leg)  # still reject a leg id we never dialled
        if self.media is None:
            return []  # no media services: every answer already counted as confirmed
        if view.state is not LegState.CONFIRMING or not self._prompting.get(view.leg):
            return []
        if event.digit != "1":
            return []  # only 1 takes the call; other keys are ignored, the timer runs on
        return [StopPlayback(view.leg), *self._bridge(view, event.at)]

    def _on_playback_done(self, event: PlaybackDone) -> list[Command]:
        if event.leg == CALLER:
            if self._media_phase is MediaPhase.WELCOME and self.state is CallState.DIALLING:
                return [CancelTimer(PROMPT_TIMER), *self._welcome_over(event.at)]
            if self.state is not CallState.MEDIA or self._media_timer != PROMPT_TIMER:
                return []
            return [CancelTimer(PROMPT_TIMER), *self._prompt_over(event.at)]
        view = self._leg(event.leg)
        if view.state is LegState.CONFIRMING and self._prompting.get(view.leg) is False:
            return self._bridge(view, event.at)  # the whisper was heard
        return []

    def _on_shutdown(self, event: Shutdown) -> list[Command]:
        if self._media_phase is MediaPhase.WELCOME:
            commands = self._end_welcome()
            commands.append(RejectCaller(503, "Service Unavailable"))
            commands.append(self._finish(Outcome.ABORTED, "switch", 503, event.at))
            return commands
        if self._round is not None:
            commands = self._end_round(event.at)
            commands.append(RejectCaller(503, "Service Unavailable"))
            commands.append(self._finish(Outcome.ABORTED, "switch", 503, event.at))
            return commands
        if self.state is CallState.BRIDGED:
            view = self._bridged()
            self._move(view, LegInput.CANCEL, ended_at=event.at)
            return [
                Cancel(view.leg),
                HangUpCaller(),
                self._finish(Outcome.ABORTED, "switch", 200, event.at),
            ]
        if self.state is CallState.MEDIA:
            commands = self._end_media()
            commands.append(HangUpCaller())
            commands.append(self._finish(Outcome.ABORTED, "switch", 200, event.at))
            return commands
        return []

    # ------------------------------------------------------------------ steps and rounds

    def _begin_step(self, index: int, at: int) -> list[Command]:
        steps = self.decision.steps
        while index < len(steps) and not steps[index].targets:
            index += 1  # a step with nobody to ring is skipped
        if index == len(steps):
            return self._final_action(at)
        self._step_failures = []
        return self._dial_round(index, 0)

    def _dial_round(self, index: int, position: int) -> list[Command]:
        step = self.decision.steps[index]
        if not step.parallel and len(step.targets) > 1:  # hunt group: one target at a time
            targets: tuple[Target, ...] = (step.targets[position],)
            timer = f"step-{index + 1}.{position + 1}"
        else:
            targets = step.targets
            timer = f"step-{index + 1}"
        display = f"{self.decision.announce_as}: {self.call.caller or ANONYMOUS}"
        commands: list[Command] = []
        legs: list[int] = []
        for target in targets:
            leg = len(self._legs) + 1  # CALLER is 0; outbound legs count from 1
            self._legs[leg] = LegView(leg, target, index, LegState.DIALLING)
            legs.append(leg)
            commands.append(Dial(leg, target, display, self.call.caller, self.call.called))
        self._round = _Round(index, position, timer, tuple(legs))
        self._round_timer_live = True
        commands.append(StartTimer(timer, step.timeout))
        return commands

    def _round_over(self, at: int) -> list[Command]:
        """Every leg of the round has failed or timed out: hunt on, next step, or final."""
        assert self._round is not None
        done = self._round
        self._round = None
        commands: list[Command] = [CancelTimer(done.timer)] if self._round_timer_live else []
        self._round_timer_live = False
        step = self.decision.steps[done.step]
        if not step.parallel and done.position + 1 < len(step.targets):
            commands.extend(self._dial_round(done.step, done.position + 1))
            return commands
        failure = min(self._step_failures, key=STEP_FAILURE_ORDER.index)
        if step.on(failure) is OnFailure.NEXT:
            commands.extend(self._begin_step(done.step + 1, at))
        else:
            commands.extend(self._final_action(at))
        return commands

    def _final_action(self, at: int) -> list[Command]:
        """No step connected the call: carry out ``Decision.final``."""
        final = self.decision.final
        media = self.media
        if media is not None and final.kind is not FinalKind.REJECT:
            # The caller is answered (200) and talks to the switch from now on.
            business = self.decision.announce_as
            self._enter(CallState.MEDIA)
            self._media_timer = PROMPT_TIMER
            if final.kind is FinalKind.ANNOUNCEMENT:
                self._enter_media(MediaPhase.ANNOUNCEMENT)
                text = final.announcement or NOBODY_THERE.format(business=business)
                play = PlayPrompt(CALLER, text)
            else:
                self._enter_media(MediaPhase.GREETING)
                text = media.greeting or VOICEMAIL_GREETING.format(business=business)
                play = PlayPrompt(CALLER, text, beep=True)
            return [AnswerCaller(), play, StartTimer(PROMPT_TIMER, media.prompt_guard_s)]
        if final.kind is FinalKind.REJECT:
            reason = final.reason
        else:
            # Media services (voicemail, announcements) will answer the caller here.
            reason = f"{final.reason} ({final.kind.value} not available yet)"
        dialled = bool(self._legs)
        rejected = final.kind is FinalKind.REJECT and not dialled
        outcome = Outcome.REJECTED if rejected else Outcome.MISSED
        return [
            RejectCaller(final.sip_status, reason),
            self._finish(outcome, "switch", final.sip_status, at),
        ]

    # ------------------------------------------------------------------ media services

    def _prompt_over(self, at: int) -> list[Command]:
        """The caller heard the prompt: hang up after an announcement, else record."""
        assert self.media is not None
        if self._media_phase is MediaPhase.GREETING:
            self._enter_media(MediaPhase.RECORDING)
            self._media_timer = RECORDING_TIMER
            seconds = self.media.voicemail_max_s
            return [
                RecordCaller(seconds, self.media.record_kind),
                StartTimer(RECORDING_TIMER, seconds),
            ]
        self._media_timer = None
        return [HangUpCaller(), self._finish(Outcome.MISSED, "switch", 200, at)]

    def _end_welcome(self) -> list[Command]:
        self._enter_media(MediaPhase.NONE)
        self._media_timer = None
        return [CancelTimer(PROMPT_TIMER), StopPlayback(CALLER)]

    def _welcome_over(self, at: int) -> list[Command]:
        self._enter_media(MediaPhase.NONE)
        self._media_timer = None
        return self._begin_step(0, at)

    def _media_timer_fired(self, at: int) -> list[Command]:
        if self._media_phase is MediaPhase.WELCOME:
            return self._welcome_over(at)
        if self._media_timer == PROMPT_TIMER:
            return self._prompt_over(at)  # the end of the file was never reported
        self._media_timer = None  # the message reached its longest length
        return [StopRecording(), HangUpCaller(), self._finish(Outcome.MISSED, "switch", 200, at)]

    def _end_media(self) -> list[Command]:
        """The caller left or the worker stops: close what the media services hold."""
        commands: list[Command] = []
        if self._media_timer is not None:
            commands.append(CancelTimer(self._media_timer))
            self._media_timer = None
        if self._media_phase is MediaPhase.RECORDING:
            commands.append(StopRecording())  # a message cut by the hang-up is still kept
        else:
            commands.append(StopPlayback(CALLER))
        return commands

    def _prompt_callee(self, view: LegView, confirm: bool, at: int) -> list[Command]:
        """The callee answered a confirm step (or is the service, with whisper on)."""
        assert self.media is not None
        self._move(view, LegInput.PROMPT, answered_at=at)
        self._prompting[view.leg] = confirm
        template = CONFIRM_PROMPT if confirm else WHISPER_PROMPT
        text = template.format(business=self.decision.announce_as)
        timer = _confirm_timer(view.leg)
        return [PlayPrompt(view.leg, text), StartTimer(timer, self.media.confirm_timeout_s)]

    def _unconfirmed(
        self, view: LegView, move: LegInput, at: int, *, timer_fired: bool = False
    ) -> list[Command]:
        """A confirming leg hung up or timed out: it counts as no answer (RFC-free policy)."""
        del self._prompting[view.leg]
        commands: list[Command] = [] if timer_fired else [CancelTimer(_confirm_timer(view.leg))]
        self._move(view, move, ended_at=at, failure=Failure.NO_ANSWER)
        self._step_failures.append(Failure.NO_ANSWER)
        if self._live_unanswered() or self._prompting:
            return commands
        if self._round is not None:
            commands.extend(self._round_over(at))
        return commands

    def _end_round(self, at: int) -> list[Command]:
        """End the ringing round at once (caller gone, shutdown): every leg is cancelled."""
        assert self._round is not None
        commands = self._cancel_unanswered(at)
        commands.extend(self._cancel_prompting(at))
        if self._round_timer_live:
            commands.append(CancelTimer(self._round.timer))
        self._round = None
        self._round_timer_live = False
        return commands

    def _cancel_prompting(self, at: int, keep: int | None = None) -> list[Command]:
        commands: list[Command] = []
        for leg in [leg for leg in self._prompting if leg != keep]:
            del self._prompting[leg]
            self._move(self._legs[leg], LegInput.CANCEL, ended_at=at)
            commands.append(Cancel(leg))
            commands.append(CancelTimer(_confirm_timer(leg)))
        return commands

    # ------------------------------------------------------------------ helpers

    def _bridge(self, view: LegView, at: int, *, timer_fired: bool = False) -> list[Command]:
        assert self._round is not None
        commands: list[Command] = [AnswerAndBridge(view.leg)]
        if view.leg in self._prompting:
            del self._prompting[view.leg]
            if not timer_fired:
                commands.append(CancelTimer(_confirm_timer(view.leg)))
            self._move(view, LegInput.ANSWER)  # answered_at is the callee's 200
        else:
            self._move(view, LegInput.ANSWER, answered_at=at)
        self._answered_leg = view.leg
        commands.extend(self._cancel_unanswered(at))
        commands.extend(self._cancel_prompting(at))
        if self._round_timer_live:
            commands.append(CancelTimer(self._round.timer))
        self._round = None
        self._round_timer_live = False
        self._enter(CallState.BRIDGED)
        return commands

    def _callee_gone(self, view: LegView, at: int) -> list[Command]:
        self._move(view, LegInput.HANG_UP, ended_at=at)
        return [HangUpCaller(), self._finish(Outcome.ANSWERED, "callee", 200, at)]

    def _cancel_unanswered(self, at: int, failure: Failure | None = None) -> list[Command]:
        """Cancel every leg still ringing; ``failure`` is how they count for the step."""
        commands: list[Command] = []
        for view in self._live_unanswered():
            self._move(view, LegInput.CANCEL, ended_at=at, failure=failure)
            commands.append(Cancel(view.leg))
            if failure is not None:
                self._step_failures.append(failure)
        return commands

    def _live_unanswered(self) -> list[LegView]:
        return [view for view in self._legs.values() if view.state in UNANSWERED]

    def _bridged(self) -> LegView:
        assert self._answered_leg is not None
        return self._legs[self._answered_leg]

    def _leg(self, leg: int) -> LegView:
        try:
            return self._legs[leg]
        except KeyError:
            what = "the caller's leg" if leg == CALLER else "not a leg this flow dialled"
            raise CallFlowError(
                f"leg {leg!r} of call {self.call.call_id!r} is {what}",
                call_id=self.call.call_id,
                leg=leg,
            ) from None

    def _move(
        self,
        view: LegView,
        move: LegInput,
        *,
        ringing_at: int | None = None,
        answered_at: int | None = None,
        ended_at: int | None = None,
        status: int | None = None,
        reason: str | None = None,
        failure: Failure | None = None,
    ) -> None:
        # A KeyError here is a bug in this module: the handlers only make listed moves.
        state = LEG_TRANSITIONS[view.state][move]
        self._legs[view.leg] = replace(
            view,
            state=state,
            ringing_at=ringing_at if ringing_at is not None else view.ringing_at,
            answered_at=answered_at if answered_at is not None else view.answered_at,
            ended_at=ended_at if ended_at is not None else view.ended_at,
            status=status if status is not None else view.status,
            reason=reason if reason is not None else view.reason,
            failure=failure if failure is not None else view.failure,
        )

    def _enter(self, state: CallState) -> None:
        """The only writer of the call state: a move the table does not list is a bug here."""
        allowed = CALL_TRANSITIONS[self._trigger_state].get(self._trigger, frozenset())
        if state not in allowed:
            trigger = self._trigger if isinstance(self._trigger, str) else self._trigger.__name__
            raise CallFlowError(
                f"call flow {self.call.call_id!r}: {trigger} cannot move the call from "
                f"{self._trigger_state.value!r} to {state.value!r}",
                call_id=self.call.call_id,
            )
        self._state = state

    def _enter_media(self, phase: MediaPhase) -> None:
        """The only writer of the media phase, along :data:`MEDIA_TRANSITIONS`."""
        if phase is self._media_phase:
            return
        if phase not in MEDIA_TRANSITIONS[self._media_phase]:
            raise CallFlowError(
                f"call flow {self.call.call_id!r}: media phase cannot go from "
                f"{self._media_phase.value!r} to {phase.value!r}",
                call_id=self.call.call_id,
            )
        self._media_phase = phase

    def _finish(self, outcome: Outcome, hung_up_by: str, sip_status: int, at: int) -> Finished:
        self._enter(CallState.FINISHED)
        final = None
        if self.media is not None and outcome in (Outcome.MISSED, Outcome.REJECTED):
            final = self.decision.final.kind.value
        elif self.media is not None and self._media_phase not in (
            MediaPhase.NONE,
            MediaPhase.WELCOME,
        ):
            final = self.decision.final.kind.value  # aborted while the final action ran
        self.result = Finished(outcome, self._answered_leg, hung_up_by, sip_status, at, final)
        return self.result


def _confirm_timer(leg: int) -> str:
    return f"confirm-{leg}"


def _confirm_leg(timer: str) -> int | None:
    prefix, _, number = timer.partition("-")
    if prefix != "confirm" or not number.isdigit():
        return None
    return int(number)


__all__ = ["STEP_FAILURE_ORDER", "CallFlow", "LegView"]
