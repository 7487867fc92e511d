"""CallDriver: leg events in, call-flow events to each call's :class:`CallFlow`, commands out.

The driver is the funnel between the SIP side (a :class:`~switch.worker.seam.SipLegs`) and
the pure parts of a call (switch/call/): :class:`~switch.call.admission.LegBudget` admits or
503s, :func:`~switch.call.features.classify_feature` says what a ``*`` number means,
:func:`rules.decide` routes, the :class:`CallFlow` decides, the
:class:`~switch.call.recorder.CallRecorder` writes the record. The driver itself only maps
handles to legs and carries commands out, in order, on the calling thread. Nothing is
answered inside a pjsua2 callback: an INVITE arrives here as an :class:`IncomingInvite`
after ``poll`` returned.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from rules import CallInfo, DialPlanSet, decide
from rules.decision import Decision
from rules.presence import PresenceState
from switch.call.admission import LegBudget
from switch.call.callflow import CallFlow
from switch.call.calllog import CallPhase, LegDialog
from switch.call.events import (
    CALLER,
    CallerDigit,
    CallerGone,
    Command,
    ConfirmDigit,
    Event,
    Finished,
    IncomingCall,
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegRinging,
    Outcome,
    Shutdown,
    TimerFired,
)
from switch.call.features import caller_number, is_feature_code, normalize_called
from switch.call.prompts import MediaOptions
from switch.call.recorder import CallRecorder
from switch.call.sipheaders import classify, parse_name_addr, reason_header
from switch.control import messages as control
from switch.masking import loggable_number
from switch.worker.attended import AttendedTransfers
from switch.worker.commands import ActiveCall, CommandRunner
from switch.worker.config import WorkerConfig
from switch.worker.featurecodes import FeatureDesk
from switch.worker.media import MediaServices
from switch.worker.originate import Originator
from switch.worker.outbound import OutboundDesk
from switch.worker.queueing import QueueDesk
from switch.worker.ringback import Ringback, TonePorts
from switch.worker.seam import (
    IncomingInvite,
    LegConnected,
    LegDigit,
    LegEnded,
    LegEvent,
    LegProgress,
    LegTransferRequested,
    SipLegs,
)
from switch.worker.timers import Timers

ENCRYPTION_REQUIRED = "Encryption required: TLS and SRTP"

log = logging.getLogger("switch.worker")


class CallDriver:
    """Drives the call flows of one worker on one :class:`SipLegs`, on the calling thread."""

    def __init__(
        self,
        config: WorkerConfig,
        legs: SipLegs,
        plans: DialPlanSet,
        budget: LegBudget,
        send: Callable[[control.FromWorker], None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        media: MediaServices | None = None,
        tones: TonePorts | None = None,
    ) -> None:
        self.config = config
        self.sip = legs
        self.plans = plans
        self.budget = budget
        self.send = send
        self.media = media
        self.presence: dict[str, dict[str, PresenceState]] = {}
        # Issue 18: call forwarding per tenant, person -> E.164 (``*21*…#``, the owner's page).
        self.forwarding: dict[str, dict[str, str]] = {}
        self.draining = False
        self._clock = clock
        self.calls: dict[int, ActiveCall] = {}
        self._by_handle: dict[int, tuple[ActiveCall, int]] = {}
        self._keys = itertools.count(1)
        self.timers = Timers()
        self._pending: deque[tuple[ActiveCall, Event]] = deque()
        self.ringback = None if tones is None else Ringback(tones, owns_ended=media is None)
        """The ringback tone of transfers (switch/worker/ringback.py), media services or not."""
        self.outbound = OutboundDesk(self)  # calls out and transfers (worker/outbound.py)
        self.originator = Originator(self)  # click to call (switch/worker/originate.py)
        self.queueing = QueueDesk(self)  # issue 19: queued callers, member codes, callbacks
        self.features = FeatureDesk(self)  # *-codes, dictation (worker/featurecodes.py)
        self.attended = AttendedTransfers(self)
        """REFER with Replaces: two calls of this worker joined (switch/worker/attended.py)."""
        self.commands = CommandRunner(
            config,
            legs,
            budget,
            self.timers,
            media,
            pending=self._pending,
            by_handle=self._by_handle,
            report=self._send_record,
            ringback=self.ringback,
        )

    @property
    def busy(self) -> bool:
        """Events are waiting: poll without blocking."""
        return bool(self._pending)

    @property
    def ticking(self) -> bool:
        """Something only polling notices is under way: a prompt, a recording, a ringback
        tone, a queue callback's ring timeout. Otherwise every wake-up is a SIP event, a
        timer deadline or a control message (the doorbell), and the loop may wait long."""
        return bool(
            (self.media is not None and self.media.active)
            or (self.ringback is not None and self.ringback.playing)
            or self.queueing.callbacks
        )

    # ------------------------------------------------------------------ leg events

    def on_leg_event(self, event: LegEvent) -> None:
        if isinstance(event, IncomingInvite):
            try:
                self._on_invite(event)
            except Exception:
                # Never leave an INVITE unanswered: the caller would hang until its timer B.
                log.exception("call %s: INVITE handling failed", event.call_id)
                entry = self._by_handle.get(event.handle)
                if entry is None:
                    self.sip.reject(event.handle, 500, "Server Internal Error")
                else:
                    self._execute(
                        entry[0],
                        [Finished(Outcome.ABORTED, None, "switch", 500, time.monotonic_ns())],
                    )
            return
        try:
            entry = self._by_handle.get(event.handle)
            if entry is None:
                self.queueing.leg_event(event)  # a callback's leg (issue 19), or nothing
                return
            call, leg = entry
            if isinstance(event, LegProgress):
                self._on_progress(call, leg, event)
            elif isinstance(event, LegConnected):
                self._on_connected(call, leg, event)
            elif isinstance(event, LegEnded):
                self._on_ended(call, leg, event)
            elif isinstance(event, LegDigit) and leg != CALLER and leg not in call.cancelled:
                if not self.outbound.transfer_digit(call, leg, event):
                    self._feed(call, ConfirmDigit(leg, event.digit, event.at))
            elif isinstance(event, LegDigit) and leg == CALLER:  # issue 19: callback digit
                self._feed(call, CallerDigit(event.digit, event.at))
            elif isinstance(event, LegTransferRequested) and event.replaces:
                self.attended.request(call, leg, event)
            elif isinstance(event, LegTransferRequested):
                self.outbound.transfer_requested(call, leg, event)
                self.run_pending()
        except Exception:
            # A bug in one call must not take the other calls of this process down.
            log.exception("leg event %r failed", type(event).__name__)

    def _on_invite(self, invite: IncomingInvite) -> None:
        caller_uri = invite.asserted or invite.from_uri
        caller_user = parse_name_addr(caller_uri).user if invite.asserted else invite.from_user
        called_raw = invite.called_user or ""
        called = normalize_called(called_raw)
        recorder = CallRecorder(
            call_id=invite.call_id,
            called=called,
            caller=caller_number(caller_user, caller_uri),
            worker=self.config.name,
            started_wall=time.time(),
            invite_in_ns=invite.at,
        )
        recorder.dialog(LegDialog(CALLER, invite.call_id, invite.from_tag))
        call = ActiveCall(key=next(self._keys), caller_handle=invite.handle, recorder=recorder)
        call.live.add(invite.handle)
        self.calls[call.key] = call
        self._by_handle[invite.handle] = (call, CALLER)

        plan = self.plans.for_number(called) if called else None
        if plan is None and self.outbound.wants(invite, called_raw):
            self.outbound.invite(call, invite, called_raw)
            return
        if is_feature_code(called_raw):
            self.features.code(call, called_raw, invite)
            return
        if plan is not None:
            recorder.routed(plan.tenant)
        if invite.refuse == "encryption":
            self._refuse_plain(call, invite)
            return
        if self.draining or not self.budget.admits(self.sip.legs_in_use):
            # The INVITE itself holds a leg; without one more free, nothing can be bridged.
            log.warning(
                "call %s tenant=%s: %s, 503",
                invite.call_id,
                recorder.record.tenant,
                "draining" if self.draining else "no free leg",
            )
            self.commands.reject(call, 503, "Service Unavailable", retry=True)
            return
        if plan is None:
            self.commands.reject(call, 404, "Not Found")
            return
        decision = decide(
            plan,
            CallInfo(called, recorder.record.caller),
            self.presence.get(plan.tenant, {}),
            self._clock(),
            self.forwarding.get(plan.tenant),
        )
        recorder.decided(decision, time.monotonic_ns())
        log.info(
            "call %s tenant=%s from %s to %s: rule %s, %d steps",
            invite.call_id,
            plan.tenant,
            loggable_number(recorder.record.caller),
            loggable_number(called),
            decision.rule,
            len(decision.steps),
        )
        if decision.steps:
            call.reserved = self.budget.reserve()
        options = None if self.media is None else self.media.options(plan.tenant)
        self.start_flow(call, invite, decision, options)
        self._send_record(call, CallPhase.STARTED)  # after the INVITEs left: not on the hot path
        self.run_pending()

    def _refuse_plain(self, call: ActiveCall, invite: IncomingInvite) -> None:
        """The calling device must use TLS + SRTP and did not (the edge says so, it knows
        the transport and the device's policy): 488 with a Reason (RFC 3326), and a record
        that says why (issue 15)."""
        log.warning(
            "call %s tenant=%s from %s: encryption required, 488",
            invite.call_id,
            call.recorder.record.tenant,
            loggable_number(call.recorder.record.caller),
        )
        self.commands.reject(
            call,
            488,
            "Encryption required",
            headers=[("Reason", reason_header(488, ENCRYPTION_REQUIRED))],
            record_reason=ENCRYPTION_REQUIRED,
        )

    def start_flow(
        self,
        call: ActiveCall,
        invite: IncomingInvite,
        decision: Decision,
        options: MediaOptions | None,
    ) -> None:
        record = call.recorder.record
        call.flow = CallFlow(
            IncomingCall(
                call_id=invite.call_id,
                called=record.called,
                caller=record.caller,
                caller_display=invite.from_display,
                at=invite.at,
            ),
            decision,
            options,
        )
        self._execute(call, call.flow.start(time.monotonic_ns()))

    def _on_progress(self, call: ActiveCall, leg: int, event: LegProgress) -> None:
        if leg == CALLER or leg in call.cancelled:
            return
        call.recorder.leg_ringing(leg, event.at)
        self._feed(call, LegRinging(leg, event.status, event.early_media, event.at))

    def _on_connected(self, call: ActiveCall, leg: int, event: LegConnected) -> None:
        if leg == CALLER:  # the ACK of our 200, or the person's phone of a click to call
            self.originator.connected(call, event)
            return
        if event.call_id:
            call.dialogs[leg] = event.call_id
            call.recorder.dialog(LegDialog(leg, event.call_id, event.remote_tag))
        call.recorder.leg_connected(leg, event.at)
        if leg in call.cancelled or call.finished is not None:
            # A 200 that crossed our CANCEL (RFC 3261 §9.1): the dialog exists, end it.
            self.sip.end(call.legs[leg])
            return
        call.recorder.answer_in(event.at)
        self._feed(call, LegAnswered(leg, event.at))

    def _on_ended(self, call: ActiveCall, leg: int, event: LegEnded) -> None:
        call.live.discard(event.handle)
        self._by_handle.pop(event.handle, None)
        if leg == CALLER:
            call.recorder.caller_ended(event.media)
            if call.originated and not event.connected:  # click to call: declined, no answer
                self.originator.unanswered(call, event.status, event.at)
            if call.flow is not None and call.finished is None:
                self._feed(call, CallerGone(cancelled=not call.caller_answered, at=event.at))
        else:
            call.recorder.leg_ended(
                leg,
                status=event.status,
                reason=event.reason,
                connected=event.connected,
                cancelled=leg in call.cancelled,
                at=event.at,
                media=event.media,
            )
            if leg not in call.cancelled and call.finished is None:
                if event.connected:
                    self._feed(call, LegHungUp(leg, event.at))
                else:
                    failure = classify(event.status)
                    self._feed(call, LegFailed(leg, event.status, event.reason, failure, event.at))
        self.run_pending()
        self._maybe_close(call)

    # ------------------------------------------------------------------ timers

    def fire_timers(self, now: int | None = None) -> None:
        """Feed every timer due by ``now`` (the monotonic clock's reading by default)."""
        now = time.monotonic_ns() if now is None else now
        for key, name in self.timers.due(now):
            call = self.calls.get(key)
            if call is None:
                continue
            if call.feature or call.flow is None:  # a feature code; a click to call ringing
                self.sip.end(call.caller_handle)
                continue
            self._feed(call, TimerFired(name, now))
            self.run_pending()

    # ------------------------------------------------------------------ flow driving

    def feed(self, call: ActiveCall, event: Event) -> None:
        """Hand one event to the call's flow and carry out what it returns."""
        self._feed(call, event)

    def execute(self, call: ActiveCall, commands: Iterable[Command]) -> None:
        self._execute(call, commands)

    def send_record(self, call: ActiveCall, phase: CallPhase) -> None:
        self._send_record(call, phase)

    def _feed(self, call: ActiveCall, event: Event) -> None:
        if call.flow is None or call.finished is not None:
            return
        try:
            commands = call.flow.handle(event)
        except Exception:
            # A flow that cannot go on must not leave its legs (and the worker's
            # shutdown) waiting: end the call here, as the switch.
            log.exception("call %s tenant=%s: call flow failed", call.recorder.call_id, call.tenant)
            commands = [Finished(Outcome.ABORTED, None, "switch", 500, time.monotonic_ns())]
        self._execute(call, commands)

    def run_pending(self) -> None:
        if self.ringback is not None:
            self.ringback.poll()
        if self.media is not None:  # prompts that reached their end (switch/worker/media.py)
            for key, media_event in self.media.ended():
                media_call = self.calls.get(key)
                if media_call is not None:
                    self._pending.append((media_call, media_event))
        while self._pending:
            call, event = self._pending.popleft()
            self._feed(call, event)
            self._maybe_close(call)

    def _execute(self, call: ActiveCall, commands: Iterable[Command]) -> None:
        for command in commands:
            try:
                if not self.queueing.takes(call, command):  # issue 19: to the supervisor
                    self.commands.carry_out(call, command)
            except Exception:
                log.exception("call %s: command %r failed", call.recorder.call_id, command)
        if call.finished is not None:
            self.commands.end_everything(call)
            self._maybe_close(call)

    def shutdown(self) -> None:
        """The grace is over: every call ends now."""
        for call in list(self.calls.values()):
            if call.flow is not None and call.finished is None:
                self._feed(call, Shutdown(time.monotonic_ns()))
            self.commands.end_everything(call)

    def _maybe_close(self, call: ActiveCall) -> None:
        if call.key not in self.calls or call.live:
            return
        if call.finished is None and call.flow is not None:
            return
        del self.calls[call.key]
        if self.ringback is not None:
            self.ringback.call_ended(call.key)
        if self.media is not None:
            self.media.call_ended(call.key)
        self.timers.forget(call.key)
        if call.feature or call.dictation_person is not None:
            # A feature code is not a call; it shows up as a presence change. A dictation
            # is filed as such (switch/supervisor/voicemail.py), not counted as a missed call.
            return
        call.recorder.closed(time.monotonic_ns())
        self.outbound.closed(call)
        self._send_record(call, CallPhase.ENDED)

    def _send_record(self, call: ActiveCall, phase: CallPhase) -> None:
        self.send(control.CallReport(phase, call.recorder.snapshot()))


__all__ = ["CallDriver"]
