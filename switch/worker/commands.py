"""Commands -> SipLegs: how the worker carries out what a call flow asked for.

:class:`CommandRunner` turns each :mod:`switch.call.events` command into calls on the
:class:`~switch.worker.seam.SipLegs` (and the media services), notes in the call's
:class:`~switch.call.recorder.CallRecorder` what was done, and queues what comes back at
once (a Dial that cannot be sent is a LegFailed, fed after the batch).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

from rules.decision import Failure
from switch.call import mediapath
from switch.call.admission import RETRY_AFTER_S, LegBudget
from switch.call.callflow import CallFlow
from switch.call.calllog import CallPhase
from switch.call.events import (
    CALLER,
    AnswerAndBridge,
    AnswerCaller,
    Bridge,
    Cancel,
    CancelTimer,
    Command,
    Dial,
    Event,
    Finished,
    HangUpCaller,
    LegFailed,
    OpenEarlyMedia,
    Outcome,
    PlayPrompt,
    PlayRingback,
    RejectCaller,
    RelayRinging,
    StartTimer,
    StopPlayback,
    Transferred,
    Unbridge,
)
from switch.call.outbound import OutboundCall
from switch.call.recorder import CallRecorder
from switch.call.sipheaders import (
    asserted_identity,
    diversion,
    from_header,
    history_info,
    reason_header,
    resolve_target,
)
from switch.call.transfer import TransferDigits
from switch.call.trunkident import (
    TrunkLine,
    format_number,
    forwarded_identity,
    outbound_identity,
    trunk_for,
)
from switch.errors import LegUnavailable, UnroutableTarget
from switch.worker.config import WorkerConfig
from switch.worker.media import CallContext, MediaServices
from switch.worker.ringback import Ringback
from switch.worker.seam import SipLegs
from switch.worker.timers import Timers

log = logging.getLogger("switch.worker")


@dataclass(slots=True)
class ActiveCall:
    """The driver's bookkeeping for one incoming call (the flow holds the logic)."""

    key: int
    caller_handle: int
    recorder: CallRecorder
    flow: CallFlow | None = None
    legs: dict[int, int] = field(default_factory=dict)  # leg -> handle
    live: set[int] = field(default_factory=set)  # handles not ended yet
    cancelled: set[int] = field(default_factory=set)  # legs the flow cancelled
    reserved: int = 0  # outbound legs held for this call, not dialled yet
    caller_answered: bool = False
    caller_rejected: bool = False
    finished: Finished | None = None
    feature: bool = False
    dictation_person: str | None = None  # the dictation box: who dictates
    outbound: OutboundCall | None = None  # a call out from a business's phone (issue 17)
    originated: bool = False  # click to call: the caller leg is ours, to the person's phone
    digits: TransferDigits = field(default_factory=TransferDigits)  # *2<number># codes
    dialogs: dict[int, str] = field(default_factory=dict)  # leg -> its Call-ID (RFC 3891)

    @property
    def tenant(self) -> str:
        return self.recorder.tenant


@dataclass(eq=False)
class CommandRunner:
    """Carries out one call's commands on the SIP side (see the module docstring)."""

    config: WorkerConfig
    sip: SipLegs
    budget: LegBudget
    timers: Timers
    media: MediaServices | None
    _: KW_ONLY
    pending: deque[tuple[ActiveCall, Event]]
    by_handle: dict[int, tuple[ActiveCall, int]]
    report: Callable[[ActiveCall, CallPhase], None]
    ringback: Ringback | None = None

    def carry_out(self, call: ActiveCall, command: Command) -> None:
        if isinstance(command, Dial):
            self._dial(call, command)
        elif isinstance(command, Cancel):
            call.cancelled.add(command.leg)
            handle = call.legs.get(command.leg)
            if handle is not None and handle in call.live:
                self.sip.end(handle)
        elif isinstance(command, RelayRinging):
            self._relay_ringing(call, command)
        elif isinstance(command, AnswerAndBridge):
            handle = call.legs[command.leg]
            view = call.flow.legs.get(command.leg) if call.flow is not None else None
            # A queued caller (issue 19) was answered already: bridge only (its 200 is gone,
            # so it cannot carry the callee's SDP; the call stays on the bridge). A call the
            # switch placed itself (click to call) has no caller to answer either.
            plan = None
            if not (call.caller_answered or call.originated):
                plan = mediapath.choose(
                    mediapath.may_bypass(
                        self.config.media_bypass, view.target.uri if view is not None else "tel:"
                    ),
                    self.sip.remote_sdp(call.caller_handle),
                    self.sip.remote_sdp(handle),
                )
            if plan is not None:
                if self.sip.answer_bypassed(call.caller_handle, handle, plan):
                    call.caller_answered = True
                    call.recorder.bridged(command.leg, time.monotonic_ns())
                    call.recorder.bypassed(command.leg)
                    self.report(call, CallPhase.ANSWERED)
            elif call.originated or call.caller_answered or self.sip.answer(call.caller_handle):
                call.caller_answered = True
                call.recorder.bridged(command.leg, time.monotonic_ns())
                self.sip.bridge(call.caller_handle, handle)
                self.report(call, CallPhase.ANSWERED)
        elif isinstance(command, RejectCaller):
            headers = [("Reason", reason_header(command.status, command.reason))]
            retry = command.status == 503  # a full queue, no capacity: when to try again
            self.reject(call, command.status, command.reason, retry=retry, headers=headers)
        elif isinstance(command, OpenEarlyMedia):
            # 183 with our SDP answer (RFC 3960): the caller hears the welcome unanswered.
            if not (call.caller_answered or call.caller_rejected):
                self.sip.provisional(call.caller_handle, 183)
        elif isinstance(command, AnswerCaller):
            # The switch itself takes the call (announcement, voicemail): a 200, no bridge.
            if not call.caller_answered and self.sip.answer(call.caller_handle):
                call.caller_answered = True
        elif isinstance(command, PlayRingback | StopPlayback) and self._ringback(call, command):
            pass  # the tone started or stopped (switch/worker/ringback.py)
        elif self.media is not None and self.media.handles(command):
            self._media_command(call, command)
        elif isinstance(command, HangUpCaller):
            self.sip.end(call.caller_handle)
        elif isinstance(command, StartTimer):
            self.timers.start(call.key, command.timer, deadline(command.seconds))
        elif isinstance(command, CancelTimer):
            self.timers.cancel(call.key, command.timer)
        elif isinstance(command, Finished):
            call.finished = command
            call.recorder.finished(command)
        elif isinstance(command, Bridge | Unbridge | Transferred):
            self._transfer_command(call, command)

    def _transfer_command(self, call: ActiveCall, command: Bridge | Unbridge | Transferred) -> None:
        """A transfer's commands (switch/call/transfer.py): the caller is answered already."""
        if isinstance(command, Transferred):
            call.recorder.transferred(command.by, command.to, command.outcome)
            log.info(
                "call %s tenant=%s: transfer by %s: %s",
                call.recorder.call_id,
                call.tenant,
                command.by,
                command.outcome,
            )
            return
        handle = call.legs.get(command.leg)
        if handle is None or handle not in call.live:
            return
        if isinstance(command, Unbridge):
            self.sip.unbridge(handle)
            return
        self.sip.bridge(call.caller_handle, handle)
        call.recorder.rebridged(command.leg)
        self.report(call, CallPhase.ANSWERED)

    def _ringback(self, call: ActiveCall, command: PlayRingback | StopPlayback) -> bool:
        """Carry out a ringback command; False for a StopPlayback that meant a prompt."""
        if self.ringback is None:
            return isinstance(command, PlayRingback)  # no media ports (a fake): nothing
        if isinstance(command, StopPlayback):
            return self.ringback.stop(call.key, command.leg)
        handle = call.caller_handle if command.leg == CALLER else call.legs.get(command.leg)
        if handle is not None:
            self.ringback.play(call.key, command.leg, handle)
        return True

    def _media_command(self, call: ActiveCall, command: Command) -> None:
        assert self.media is not None
        if isinstance(command, PlayPrompt) and command.leg != CALLER:
            # A callee asked to confirm may still be bridged with the caller for its
            # early media (183): the caller must not hear that side meanwhile.
            handle = call.legs.get(command.leg)
            if handle is not None:
                self.sip.unbridge(handle)
        record = call.recorder.record
        context = CallContext(
            key=call.key,
            tenant=call.tenant,
            call_id=record.call_id,
            caller=record.caller,
            called=record.called,
            caller_handle=call.caller_handle,
            handles=call.legs,
            person=call.dictation_person,
        )
        for media_event in self.media.carry_out(context, command):
            self.pending.append((call, media_event))

    def _dial(self, call: ActiveCall, dial: Dial) -> None:
        target = dial.target
        call.recorder.dialling(dial.leg, target)
        emergency = call.outbound is not None and call.outbound.emergency
        allowed, call.reserved = self.budget.take(
            call.reserved, self.sip.legs_in_use, emergency=emergency
        )
        if not allowed:
            self._leg_failed(call, dial.leg, 503, "No free leg in this worker", local=True)
            return
        host = self.config.sip
        try:
            uri = resolve_target(target.uri, self.config.routes, self.config.trunk)
        except UnroutableTarget as exc:
            log.warning("call %s tenant=%s: %s", call.recorder.call_id, call.tenant, exc)
            self._leg_failed(call, dial.leg, 404, "No route to target")
            return
        line = trunk_for(self.config.trunks, call.tenant) if target.uri.startswith("tel:") else None
        if call.outbound is not None:  # dialled, *8<code>#, click to call: one path
            uri, sender, headers = outbound_leg(call.outbound, line, uri, host)
        elif line is not None:
            uri, sender, headers = trunk_leg(line, dial, uri)
        else:
            headers = [("Diversion", diversion(dial.diverted_from, host))]
            headers.append(("History-Info", history_info(dial.diverted_from, uri, host)))
            if dial.caller:
                headers.append(("P-Asserted-Identity", asserted_identity(dial.caller, host)))
            sender = from_header(dial.display, dial.caller, host)
        try:
            handle = self.sip.dial(uri, sender, headers)
        except LegUnavailable as exc:
            log.warning("call %s tenant=%s: %s", call.recorder.call_id, call.tenant, exc)
            local = exc.sip_status == 503  # no call slot (PJ_ETOOMANY), not the target
            self._leg_failed(
                call, dial.leg, exc.sip_status, "INVITE could not be sent", local=local
            )
            return
        call.recorder.invite_sent(dial.leg, time.monotonic_ns())
        call.legs[dial.leg] = handle
        call.live.add(handle)
        self.by_handle[handle] = (call, dial.leg)

    def _leg_failed(
        self, call: ActiveCall, leg: int, status: int, reason: str, *, local: bool = False
    ) -> None:
        call.recorder.not_sent(leg, status, reason)
        failure = Failure.NO_ANSWER if status == 408 else Failure.UNREACHABLE
        failed = LegFailed(leg, status, reason, failure, time.monotonic_ns(), local=local)
        # Fed after the current command list, never into the flow while it is returning.
        self.pending.append((call, failed))

    def _relay_ringing(self, call: ActiveCall, command: RelayRinging) -> None:
        if call.caller_answered or call.caller_rejected:
            return
        media_leg = command.media_from_leg
        handle = call.legs.get(media_leg) if media_leg is not None else None
        if command.status == 183 and handle is not None and handle in call.live:
            # Early media (RFC 3960): our 183 carries an SDP answer, and the target's
            # early audio flows through the bridge before anyone answers.
            self.sip.provisional(call.caller_handle, 183)
            self.sip.bridge(call.caller_handle, handle)
        else:
            self.sip.provisional(call.caller_handle, 180)
        call.recorder.ringing_relayed(time.monotonic_ns())

    def reject(
        self,
        call: ActiveCall,
        status: int,
        reason: str,
        *,
        retry: bool = False,
        headers: Sequence[tuple[str, str]] = (),
        record_reason: str | None = None,
    ) -> None:
        if call.caller_answered or call.caller_rejected:
            return
        call.caller_rejected = True
        extra = list(headers)
        if retry:
            extra.append(("Retry-After", str(RETRY_AFTER_S)))  # RFC 3261 §20.33
        self.sip.reject(call.caller_handle, status, reason, extra)
        if call.flow is None:
            at = time.monotonic_ns()
            call.recorder.rejected_unrouted(status, at, record_reason)
            call.finished = Finished(Outcome.REJECTED, None, "switch", status, at)
        call.reserved = self.budget.release(call.reserved)

    def end_everything(self, call: ActiveCall) -> None:
        """Safety net once a flow finished (or the worker stops): no leg outlives its call."""
        call.reserved = self.budget.release(call.reserved)
        for leg, handle in call.legs.items():
            if handle in call.live:
                call.cancelled.add(leg)
                self.sip.end(handle)
        if call.caller_handle in call.live:
            if call.caller_answered:
                self.sip.end(call.caller_handle)
            elif not call.caller_rejected:
                status = call.finished.sip_status if call.finished else 500
                status = status if status >= 300 else 500
                self.reject(call, status, "Call ended")


def trunk_uri(line: TrunkLine, uri: str) -> str:
    """The request URI towards ``line``: the number in the trunk's format (49..., 0049...)."""
    policy = line.policy
    scheme, _, rest = uri.partition(":")
    number, _, host = rest.partition("@")
    return f"{scheme}:{format_number(number, policy.number_format, policy.country)}@{host}"


def trunk_leg(line: TrunkLine, dial: Dial, uri: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Request-URI, From and headers of a leg through ``line``: the number in the trunk's
    format, the identity of its profile, and X-Rufweiche-Trunk for the edge (TRUNK_OUT)."""
    policy = line.policy
    number = uri.partition(":")[2].partition("@")[0]
    target = trunk_uri(line, uri)
    identity = forwarded_identity(
        policy,
        caller=dial.caller,
        business=dial.diverted_from,
        display=dial.display,
        target_uri=f"sip:{format_number(number, policy.number_format, policy.country)}"
        f"@{policy.domain}",
    )
    return target, identity.from_header, [*identity.headers, ("X-Rufweiche-Trunk", line.name)]


def outbound_leg(
    call: OutboundCall, line: TrunkLine | None, uri: str, host: str
) -> tuple[str, str, list[tuple[str, str]]]:
    """Request-URI, From and headers of a call placed for a business (a phone dialling
    out, ``*8<code>#``, click to call): through the tenant's trunk the identity its profile
    prescribes (:func:`outbound_identity`: From user, P-Preferred- or P-Asserted-Identity,
    its number format and domain) and X-Rufweiche-Trunk for the edge (TRUNK_OUT); without
    one (the legacy ``trunk:`` setting, an internal call) From and P-Asserted-Identity of
    the business (RFC 3325), ``Privacy: id`` on request (RFC 3323)."""
    if line is not None:
        identity = outbound_identity(
            line.policy, presented=call.presented, display=call.announce_as, privacy=call.privacy
        )
        headers = [*identity.headers, ("X-Rufweiche-Trunk", line.name)]
        return trunk_uri(line, uri), identity.from_header, headers
    headers = [("P-Asserted-Identity", asserted_identity(call.presented, host))]
    sender = from_header(call.announce_as, call.presented, host)
    if call.privacy:
        headers.append(("Privacy", "id"))
        sender = from_header("Anonymous", None, host)
    return uri, sender, headers


def deadline(seconds: float) -> int:
    """The monotonic reading ``seconds`` from now."""
    return time.monotonic_ns() + int(seconds * 1e9)


__all__ = ["ActiveCall", "CommandRunner", "deadline"]
