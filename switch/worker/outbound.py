"""OutboundDesk: calls out from the businesses' phones, and transfers, for the CallDriver.

An INVITE that no plan answers, from a device a plan owns, to a dialable number (or with
an outbound prefix, ``*31#``, ``*8<code>#``) is a call *out*: the pure
:func:`~switch.call.outbound.decide_outbound` says whether it may go and as whom, the
worker-local :class:`~switch.call.outbound.OutboundLimits` stop a stolen phone password,
and the call then runs as an ordinary :class:`~switch.call.callflow.CallFlow` with one
step (the trunk). 110/112 skip permissions and limits and may use the emergency reserve
of the :class:`~switch.call.admission.LegBudget` and a draining worker.

Transfers: a REFER from a bridged callee (switch/pjsua/calls.py) or its DTMF code
(``*2<number>#``) becomes a :class:`~switch.call.events.TransferRequested` for the flow;
the target is resolved here, where the plans are (:func:`~switch.call.transfer.transfer_target`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from rules import DialPlan
from switch.call.callflow import CallFlow
from switch.call.calllog import CallPhase
from switch.call.events import Finished, Outcome, TransferRequested
from switch.call.features import device_uris, phone_owner
from switch.call.outbound import (
    OutboundCall,
    OutboundLimits,
    Refused,
    decide_outbound,
    is_outbound_dial,
    outbound_decision,
    outbound_incoming,
    parse_dialled,
)
from switch.call.sipheaders import reason_header
from switch.call.states import CallState
from switch.call.transfer import transfer_target
from switch.control import messages as control
from switch.masking import loggable_number
from switch.worker.commands import ActiveCall
from switch.worker.seam import IncomingInvite, LegDigit, LegTransferRequested

if TYPE_CHECKING:
    from switch.worker.driver import CallDriver

log = logging.getLogger("switch.worker")


class OutboundDesk:
    """The outbound and transfer side of one :class:`CallDriver` (see the module docstring)."""

    def __init__(self, driver: CallDriver) -> None:
        self.driver = driver
        self.limits = OutboundLimits()
        self.limit_hits: list[Refused] = []
        """Limits reached in this worker (the supervisor's audit log gets them as warnings)."""

    # ------------------------------------------------------------------ calls out

    def owner(self, invite: IncomingInvite) -> tuple[DialPlan, str] | None:
        """The plan and person whose SIP phone sent the INVITE (:func:`phone_owner`)."""
        driver = self.driver
        return phone_owner(invite.from_uri, invite.from_user, driver.plans, driver.config.routes)

    def wants(self, invite: IncomingInvite, called_raw: str) -> bool:
        """Whether the INVITE is a call out (else: a feature code, or 404 as before)."""
        if called_raw.startswith("*"):
            return is_outbound_dial(called_raw)
        return parse_dialled(called_raw) is not None and self.owner(invite) is not None

    def invite(self, call: ActiveCall, invite: IncomingInvite, called_raw: str) -> None:
        driver = self.driver
        uris = device_uris(invite.from_uri, driver.config.routes)
        owner = self.owner(invite)
        answer = decide_outbound(driver.plans, owner, called_raw, uris)
        if not isinstance(answer, Refused) and owner is not None:
            answer = self.limited(owner[0], answer, invite.call_id) or answer
        if isinstance(answer, Refused):
            if answer.tenant is not None:
                call.recorder.routed(answer.tenant)
            headers = [("Reason", reason_header(answer.status, answer.reason))]
            driver.commands.reject(call, answer.status, answer.reason, headers=headers)
            return
        emergency = answer.emergency
        budget = driver.budget
        in_use = driver.sip.legs_in_use
        admitted = budget.admits_emergency(in_use) if emergency else budget.admits(in_use)
        if not admitted or (driver.draining and not emergency):
            driver.commands.reject(call, 503, "Service Unavailable", retry=True)
            return
        call.outbound = answer
        call.recorder.outbound(answer.tenant, answer.presented)
        call.recorder.routed(answer.tenant)
        decision = outbound_decision(answer)
        call.recorder.decided(decision, time.monotonic_ns())
        log.info(
            "call %s tenant=%s: %s call out by %s to %s as %s",
            invite.call_id,
            answer.tenant,
            answer.call_class,
            answer.person,
            loggable_number(answer.number),
            loggable_number(answer.presented),
        )
        if not emergency:
            call.reserved = budget.reserve()
        call.flow = CallFlow(outbound_incoming(answer, invite.call_id, invite.at), decision)
        driver.execute(call, call.flow.start(time.monotonic_ns()))
        driver.send_record(call, CallPhase.STARTED)
        driver.run_pending()

    def limited(self, plan: DialPlan, answer: OutboundCall, call_id: str) -> Refused | None:
        """The per-person limits (None: within them); a hit is reported for the audit log."""
        refused = self.limits.check(plan, answer, time.monotonic())
        if refused is None:
            return None
        self.limit_hits.append(refused)
        self.driver.send(
            control.LimitHit(
                refused.tenant or "",
                refused.person or "",
                refused.reason,
                call_id,
                refused.call_class,
            )
        )
        log.warning(
            "call %s tenant=%s person=%s: %s (audit: outbound_limit)",
            call_id,
            refused.tenant,
            refused.person,
            refused.reason,
        )
        return refused

    def closed(self, call: ActiveCall) -> None:
        """A call ended: international minutes count against the person's daily limit."""
        record = call.recorder.record
        if call.originated and call.flow is None and record.outcome is None:
            # Click to call: the person's phone never answered, nothing went out.
            at = record.ended_ns or time.monotonic_ns()
            call.recorder.finished(Finished(Outcome.CANCELLED, None, "caller", 487, at))
            call.reserved = self.driver.budget.release(call.reserved)
        if call.outbound is None or record.answer_relayed_ns is None:
            return
        end = record.ended_ns or time.monotonic_ns()
        self.limits.talked(call.outbound, (end - record.answer_relayed_ns) / 1e9, time.monotonic())

    # ------------------------------------------------------------------ transfers

    def transfer_requested(self, call: ActiveCall, leg: int, event: LegTransferRequested) -> None:
        text = event.target_user or event.refer_to
        self._transfer(call, leg, text, event.at, event.replaces)

    def transfer_digit(self, call: ActiveCall, leg: int, event: LegDigit) -> bool:
        """A DTMF digit of the bridged callee: part of a ``*2<number>#`` code? (True: used)."""
        flow = call.flow
        if flow is None or flow.state is not CallState.BRIDGED or flow.answered_leg != leg:
            return False
        text = call.digits.push(event.digit)
        if text is not None:
            self._transfer(call, leg, text, event.at, None)
        return True

    def console_transfer(self, call_id: str, text: str, by: str | None) -> bool:
        """The console's "put through" (issue 18): the bridged callee's blind transfer, as
        if its phone had sent a REFER for ``text``. False: no such call here, or not bridged."""
        call = next((c for c in self.driver.calls.values() if c.recorder.call_id == call_id), None)
        flow = call.flow if call is not None else None
        if call is None or flow is None or flow.state is not CallState.BRIDGED:
            log.warning("call %s: put through by %s refused: %s", call_id, by,
                        "no such call" if call is None else "not bridged")  # fmt: skip
            return False
        leg = flow.answered_leg
        if leg is None:
            return False
        log.info("call %s tenant=%s: put through by %s", call_id, call.tenant, by)
        self._transfer(call, leg, text, time.monotonic_ns(), None)
        return True

    def _transfer(
        self, call: ActiveCall, leg: int, text: str, at: int, replaces: str | None
    ) -> None:
        flow = call.flow
        if flow is None:
            return
        plan = self.driver.plans.plans.get(call.tenant) if call.tenant else None
        view = flow.legs.get(leg)
        transferor = view.target.owner if view is not None else None
        target = transfer_target(text, plan, transferor)
        log.info(
            "call %s tenant=%s: transfer by leg %d to %s: %s",
            call.recorder.call_id,
            call.tenant,
            leg,
            loggable_number(text),
            target.ref if target is not None else "nobody",
        )
        self.driver.feed(call, TransferRequested(leg, target, text, at, replaces))
        self.driver.run_pending()


__all__ = ["OutboundDesk"]
