"""Originator: click to call (issue 17) — ring the person's phone, then call the customer.

Theory of operation
-------------------
The supervisor sends a :class:`~switch.control.messages.Originate` (the HTTP API's
``POST /api/v1/calls/dial``). The worker decides exactly as for a dialled call
(:func:`~switch.call.outbound.decide_click_to_call` is :func:`decide_outbound` of that
device dialling the number, ``*8<code>#`` included), applies the per-person limits of
this worker (:meth:`OutboundDesk.limited`: a hit is a ``limit_hit`` for the audit log)
and the leg budget (two legs; 110/112 may take the emergency reserve), then answers
with an :class:`~switch.control.messages.OriginateAnswer` at once: 202 once the
person's phone is rung, or why not.

The person's leg stands where an incoming call's caller leg stands (``CALLER`` of the
:class:`~switch.worker.commands.ActiveCall`, ``originated``): nothing goes out until it
answers. When it does (:meth:`connected`), the call runs as an ordinary
:class:`~switch.call.callflow.CallFlow` of the outbound decision — the trunk leg with the
business's number, exactly as ``*8`` sends it (``CommandRunner._dial`` with
``call.outbound``) — and ``AnswerAndBridge`` bridges the two (the person is answered
already, so no 200 is sent to her). If she declines, does not answer within the
business's ``outbound.ring_timeout``, or the leg fails, the call ends as ``cancelled``
with no leg to the customer, its record's ``reason`` saying why in German
(:meth:`Originator.unanswered`: "abgelehnt (besetzt)" for a 486, "abgelehnt" for a 603).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from switch.call.callflow import CallFlow
from switch.call.calllog import CallPhase
from switch.call.events import CALLER, Finished, Outcome
from switch.call.outbound import (
    Refused,
    decide_click_to_call,
    outbound_decision,
    outbound_incoming,
)
from switch.call.recorder import CallRecorder
from switch.call.sipheaders import from_header, resolve_target
from switch.control import messages as control
from switch.errors import LegUnavailable, UnroutableTarget
from switch.masking import loggable_number
from switch.worker.commands import ActiveCall, deadline
from switch.worker.seam import LegConnected

if TYPE_CHECKING:
    from switch.worker.driver import CallDriver

log = logging.getLogger("switch.worker")

RING_TIMER = "originate-ring"
DISPLAY = "Rückruf"
"""What the person's phone shows before the business's name: this call is her call back."""


def unanswered_reason(status: int) -> str:
    """Why a click to call ended at the person's phone, in German (the record's reason)."""
    if status in (486, 600):
        return "abgelehnt (besetzt)"
    if status == 603:
        return "abgelehnt"
    if status in (408, 480, 487):
        return "nicht angenommen"
    return f"Telefon nicht erreichbar ({status})"


class Originator:
    """Click to call for one :class:`CallDriver` (see the module docstring)."""

    def __init__(self, driver: CallDriver) -> None:
        self.driver = driver

    def originate(self, message: control.Originate) -> None:
        answer = self._start(message)
        self.driver.send(answer)
        if answer.status != 202:
            log.warning("click to call %s by %s refused: %d %s", message.request, message.by,
                        answer.status, answer.reason)  # fmt: skip

    def _start(self, message: control.Originate) -> control.OriginateAnswer:
        driver = self.driver
        request = message.request

        def refused(status: int, reason: str) -> control.OriginateAnswer:
            return control.OriginateAnswer(request, status, reason)

        decided = decide_click_to_call(
            driver.plans, message.tenant, message.ring, message.number, message.business
        )
        if isinstance(decided, Refused):
            return refused(decided.status, decided.reason)
        outbound = decided.call
        call_id = f"c2c-{uuid.uuid4().hex}"
        plan = driver.plans.plans[message.tenant]
        limit = driver.outbound.limited(plan, outbound, call_id)
        if limit is not None:
            return refused(limit.status, limit.reason)
        in_use = driver.sip.legs_in_use + 1  # the person's leg, before it exists
        budget = driver.budget
        emergency = outbound.emergency
        admitted = budget.admits_emergency(in_use) if emergency else budget.admits(in_use)
        if not admitted or (driver.draining and not emergency):
            return refused(503, "No free legs")
        config = driver.config
        try:
            uri = resolve_target(decided.device_uri, config.routes, config.trunk)
        except UnroutableTarget as exc:
            return refused(404, str(exc))
        now = time.monotonic_ns()
        recorder = CallRecorder(
            call_id=call_id,
            called=outbound.number,
            caller=outbound.presented,
            worker=config.name,
            started_wall=time.time(),
            invite_in_ns=now,
        )
        recorder.outbound(outbound.tenant, outbound.presented)
        recorder.routed(outbound.tenant)
        display = f"{DISPLAY} {outbound.announce_as}".strip()
        sender = from_header(display, outbound.number if not outbound.target_uri else None,
                             config.sip)  # fmt: skip
        try:
            handle = driver.sip.dial(uri, sender, [])
        except LegUnavailable as exc:
            return refused(503, str(exc))
        call = ActiveCall(key=next(driver._keys), caller_handle=handle, recorder=recorder)
        call.originated = True
        call.outbound = outbound
        call.live.add(handle)
        if not emergency:
            call.reserved = budget.reserve()  # the customer's leg, once she answers
        driver.calls[call.key] = call
        driver._by_handle[handle] = (call, CALLER)
        driver.timers.start(call.key, RING_TIMER, deadline(outbound.ring_timeout))
        log.info(
            "call %s tenant=%s: click to call by %s: ringing %s, then %s to %s as %s",
            call_id,
            outbound.tenant,
            message.by,
            decided.ring,
            outbound.call_class,
            loggable_number(outbound.number),
            loggable_number(outbound.presented),
        )
        driver.send_record(call, CallPhase.STARTED)
        return control.OriginateAnswer(request, 202, "ringing", call_id)

    def unanswered(self, call: ActiveCall, status: int, at: int) -> None:
        """The person's phone ended the call unanswered (486/603: declined, 408/480/487:
        not answered): the record says so, in German (``reason``, ``sip_status``); the
        customer was never called."""
        record = call.recorder.record
        if not call.originated or call.flow is not None or record.outcome is not None:
            return
        self.driver.timers.cancel(call.key, RING_TIMER)
        record.reason = unanswered_reason(status)
        call.recorder.finished(Finished(Outcome.CANCELLED, None, "caller", status, at))
        call.reserved = self.driver.budget.release(call.reserved)
        log.info("call %s tenant=%s: click to call: the person's phone %s (%d), nothing went out",
                 record.call_id, record.tenant, record.reason, status)  # fmt: skip

    def connected(self, call: ActiveCall, event: LegConnected) -> None:
        """The person's phone answered: now the customer is called (nothing went out before)."""
        outbound = call.outbound
        if not call.originated or outbound is None or call.flow is not None:
            return
        if call.finished is not None:
            return
        driver = self.driver
        driver.timers.cancel(call.key, RING_TIMER)
        call.caller_answered = True  # by her phone: no 200 of ours to send
        decision = outbound_decision(outbound)
        now = time.monotonic_ns()
        call.recorder.decided(decision, now)
        call.flow = CallFlow(outbound_incoming(outbound, call.recorder.call_id, event.at), decision)
        log.info("call %s tenant=%s: the person answered, calling out", call.recorder.call_id,
                 outbound.tenant)  # fmt: skip
        driver.execute(call, call.flow.start(now))
        driver.run_pending()


__all__ = ["DISPLAY", "RING_TIMER", "Originator", "unanswered_reason"]
