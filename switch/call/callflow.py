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
This is h11's ``_state.py`` applied to a B2BUA: the whole lifecycle lives in this file
and its parts: the state and its writers (switch/call/flowbase.py), the media services
(switch/call/mediaflow.py) and transfers (switch/call/transfer.py), mixed into CallFlow.
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
Except: when every leg of the call so far failed *in the worker* (``LegFailed.local``:
no free call slot), nobody was rung; the caller gets 503 + Retry-After (REJECTED), so
that the edge puts the call to another worker, rather than the plan's next step.

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
* With media services the call enters MEDIA for a voicemail or an announcement, a
  welcome prompt may come before the first step, and a callee may have to confirm (press
  1) or hear a whisper before the bridge: switch/call/mediaflow.py tells how.

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

from dataclasses import replace
from typing import Final

from rules.decision import Failure, OnFailure, Target
from switch.call.events import (
    AnswerAndBridge,
    CallerDigit,
    CallerGone,
    Cancel,
    CancelTimer,
    Command,
    ConfirmDigit,
    Dial,
    Event,
    HangUpCaller,
    LegAnswered,
    LegFailed,
    LegHandedOver,
    LegHungUp,
    LegRinging,
    Outcome,
    PlaybackDone,
    QueueGaveUp,
    QueueOffered,
    QueueStatus,
    RejectCaller,
    RelayRinging,
    Shutdown,
    StartTimer,
    TimerFired,
    TransferJoined,
    TransferRequested,
)
from switch.call.flowbase import LegView, Round
from switch.call.mediaflow import MediaFlow, confirm_timer
from switch.call.prompts import ANONYMOUS
from switch.call.queueflow import QueueFlow
from switch.call.states import START, UNANSWERED, CallState, LegInput, LegState, MediaPhase
from switch.call.transfer import TransferFlow
from switch.errors import CallFlowError

STEP_FAILURE_ORDER: Final = (
    Failure.NO_ANSWER,
    Failure.BUSY,
    Failure.DECLINED,
    Failure.UNREACHABLE,
)
"""Which leg failure names the failure of a whole step: the first one present here."""


class CallFlow(MediaFlow, TransferFlow, QueueFlow):
    """The sans-I/O state machine of one incoming call (see the module docstring).

    Its state and the writers of it are in switch/call/flowbase.py, the media services
    (welcome, voicemail, announcement, confirm, whisper) in switch/call/mediaflow.py,
    transfers (``TransferRequested``, state TRANSFERRING) in switch/call/transfer.py,
    queue steps (``Step.queue``, state QUEUED, issue 19) in switch/call/queueflow.py.
    """

    # ------------------------------------------------------------------ public API

    @property
    def timer(self) -> str | None:
        """The timer that moves the call on next: the round's, a confirmation's, a prompt's."""
        if self._round is not None and self._round_timer_live:
            return self._round.timer
        if self._prompting:
            return confirm_timer(next(iter(self._prompting)))
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
            return self._start_welcome(self.media.welcome, self.media.prompt_guard_s)
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
        if self._queue is not None:  # waiting in a queue (issue 19): switch/call/queueflow.py
            return self._queue_event(event)
        if isinstance(event, QueueOffered | QueueStatus | QueueGaveUp | CallerDigit):
            return []  # the queue spoke after the caller left it (answered, gone, moved on)
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
        if event.local:
            self._failed_here.add(view.leg)
        if self._live_unanswered() or self._prompting:
            return []  # in a parallel round one failure just ends that leg
        if self._failed_here == self._legs.keys():
            return self._no_room_here(event.at)
        return self._round_over(event.at)

    def _no_room_here(self, at: int) -> list[Command]:
        """No leg of this call left the worker (no free call slot: pjsua frees a slot
        only once the far end answered the BYE of the call before): 503 + Retry-After,
        and the edge puts the call to another worker, where the caller hears nothing of
        it, instead of this plan's next step or voicemail for a target never rung."""
        commands = self._end_round(at)
        commands.append(RejectCaller(503, "Service Unavailable"))
        commands.append(self._finish(Outcome.REJECTED, "switch", 503, at))
        return commands

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
        media = self._on_media_timer(event)
        if media is not None:
            return media
        if self._round is None or event.timer != self._round.timer or not self._round_timer_live:
            return []  # stale: the round it belonged to has ended
        self._round_timer_live = False
        commands = self._cancel_unanswered(event.at, Failure.NO_ANSWER)
        if self._prompting:
            return commands  # an answered leg is still deciding: it ends the round
        commands.extend(self._round_over(event.at))
        return commands

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
        while index < len(steps) and not steps[index].targets and steps[index].queue is None:
            index += 1  # a step with nobody to ring is skipped
        if index == len(steps):
            return self._final_action(at)
        if steps[index].queue is not None:
            return self._enter_queue(index, at)  # issue 19: switch/call/queueflow.py
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
        self._round = Round(index, position, timer, tuple(legs))
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

    def _bridge(self, view: LegView, at: int, *, timer_fired: bool = False) -> list[Command]:
        assert self._round is not None
        commands: list[Command] = [AnswerAndBridge(view.leg)]
        if view.leg in self._prompting:
            del self._prompting[view.leg]
            if not timer_fired:
                commands.append(CancelTimer(confirm_timer(view.leg)))
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


__all__ = ["STEP_FAILURE_ORDER", "CallFlow", "LegView"]
