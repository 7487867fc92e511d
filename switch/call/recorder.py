"""CallRecorder: the only writer of a call's :class:`~switch.call.calllog.CallRecord`.

The worker's driver tells the recorder what happened (leg events, the flow's commands as
they are carried out) and the recorder folds each into the record and its legs' records.
At the end of each leg the RTCP figures get their MOS estimate (:func:`quality.mos_for`).
Pure: every stamp comes in as an argument.
"""

from __future__ import annotations

from dataclasses import replace

from rules.decision import Decision, Target
from switch.call import quality
from switch.call.calllog import CallRecord, LegDialog, LegRecord, MediaSource, MediaStats
from switch.call.events import CALLER, Finished, Outcome

BYPASS = "bypass"
"""``media_path`` of a leg whose RTP went past pjsua2 (switch/call/mediapath.py)."""


def rated(media: MediaStats | None) -> MediaStats | None:
    """The figures with their MOS estimate (None stays None; a given MOS is kept) and
    their source (the worker's own RTCP unless they say otherwise)."""
    if media is None:
        return None
    source = media.source or MediaSource.PJSUA.value
    if media.mos is not None:
        return replace(media, source=source)
    return replace(media, mos=quality.mos_for(media), source=source)


class CallRecorder:
    """Folds one call's events into its record (see the module docstring)."""

    def __init__(
        self,
        *,
        call_id: str,
        called: str,
        caller: str | None,
        worker: str,
        started_wall: float,
        invite_in_ns: int,
    ) -> None:
        self.record = CallRecord(
            call_id=call_id,
            tenant=None,
            called=called,
            caller=caller,
            rule=None,
            worker=worker,
            started_wall=started_wall,
            invite_in_ns=invite_in_ns,
        )
        self._legs: dict[int, LegRecord] = {}
        self._step_of_target: dict[str, int] = {}

    @property
    def call_id(self) -> str:
        return self.record.call_id

    @property
    def tenant(self) -> str:
        return self.record.tenant or "-"

    def leg(self, leg: int) -> LegRecord | None:
        return self._legs.get(leg)

    # ------------------------------------------------------------------ routing

    def routed(self, tenant: str) -> None:
        self.record.tenant = tenant

    def decided(self, decision: Decision, at: int | None) -> None:
        """The plan's answer; ``at`` is None when no rules ran (the dictation box)."""
        self.record.tenant = decision.tenant
        if at is not None:
            self.record.decision_ns = at
        self.record.rule = decision.rule
        for index, step in enumerate(decision.steps):
            for target in step.targets:
                self._step_of_target.setdefault(target.ref, index)

    # ------------------------------------------------------------------ outbound legs

    def dialling(self, leg: int, target: Target) -> None:
        record = LegRecord(
            leg=leg,
            target=target.ref,
            uri=target.uri,
            owner=target.owner,
            is_service=target.is_service,
            step=self._step_of_target.get(target.ref, 0),
        )
        self._legs[leg] = record
        self.record.legs.append(record)

    def invite_sent(self, leg: int, at: int) -> None:
        self._legs[leg].invite_out_ns = at

    def not_sent(self, leg: int, status: int, reason: str) -> None:
        record = self._legs.get(leg)
        if record is not None:
            record.status, record.reason = status, reason

    def leg_ringing(self, leg: int, at: int) -> None:
        record = self._legs.get(leg)
        if record is not None and record.first_18x_in_ns is None:
            record.first_18x_in_ns = at
        if self.record.first_18x_in_ns is None:
            self.record.first_18x_in_ns = at

    def leg_connected(self, leg: int, at: int) -> None:
        record = self._legs.get(leg)
        if record is not None:
            record.answered_ns = at

    def answer_in(self, at: int) -> None:
        """The 200 of a leg the flow still wants."""
        self.record.answer_in_ns = at

    def leg_ended(
        self,
        leg: int,
        *,
        status: int,
        reason: str,
        connected: bool,
        cancelled: bool,
        at: int,
        media: MediaStats | None,
    ) -> None:
        record = self._legs.get(leg)
        if record is None:
            return
        record.ended_ns = at
        record.media = rated(media)
        # An answered leg counts as 200 however it ended; one we cancelled as 487
        # (RFC 3261 §9.1), whatever pjsua last saw on it.
        if connected:
            record.status = 200
        elif cancelled:
            record.status = 487
        else:
            record.status = status
        record.reason = reason

    def dialog(self, event: LegDialog) -> None:
        """The SIP Call-ID and far tag of a leg (:data:`CALLER` or an outbound leg)."""
        if event.leg == CALLER:
            self.record.caller_tag = event.tag
            return
        record = self._legs.get(event.leg)
        if record is not None:
            record.sip_call_id, record.sip_tag = event.call_id, event.tag

    def bypassed(self, leg: int) -> None:
        """The caller's and ``leg``'s RTP flow past pjsua2 (its figures say nothing now)."""
        self.record.media_path = BYPASS
        record = self._legs.get(leg)
        if record is not None:
            record.media_path = BYPASS

    # ------------------------------------------------------------------ the caller

    def caller_ended(self, media: MediaStats | None) -> None:
        self.record.media = rated(media)

    def ringing_relayed(self, at: int) -> None:
        if self.record.first_18x_relayed_ns is None:
            self.record.first_18x_relayed_ns = at

    def bridged(self, leg: int, at: int) -> None:
        """Our 200 to the caller, bridged with ``leg``."""
        self.record.answer_relayed_ns = at
        target = self._legs.get(leg)
        if target is not None:
            self.record.answered_by = target.target
            self.record.answered_by_service = target.is_service

    def rebridged(self, leg: int) -> None:
        """A transfer (or its recall) bridged the caller with ``leg``: it answered."""
        target = self._legs.get(leg)
        if target is not None:
            self.record.answered_by = target.target
            self.record.answered_by_service = target.is_service

    def transferred(self, by: str, to: str, outcome: str) -> None:
        self.record.transferred_by = by
        self.record.transferred_to = to
        self.record.transfer_outcome = outcome

    def outbound(self, tenant: str, presented: str) -> None:
        """An outbound call of ``tenant`` (its usage), showing ``presented``."""
        self.record.tenant = tenant
        self.record.direction = "outbound"
        self.record.presented = presented

    def rejected_unrouted(self, status: int, at: int, reason: str | None = None) -> None:
        """Rejected before any call flow ran (404, 503, an unknown feature code, 488 when
        the caller's device must encrypt and did not: ``reason`` says why)."""

        self.record.outcome = str(Outcome.REJECTED)
        self.record.sip_status = status
        self.record.ended_ns = at
        self.record.reason = reason

    def finished(self, result: Finished) -> None:
        record = self.record
        record.outcome = str(result.outcome)
        record.hung_up_by = result.hung_up_by
        record.sip_status = result.sip_status
        record.ended_ns = result.at
        record.final_action = result.final

    def closed(self, at: int) -> None:
        if self.record.ended_ns is None:
            self.record.ended_ns = at

    def snapshot(self) -> CallRecord:
        """A copy to send (the record keeps changing; the writer thread encodes it)."""
        record = self.record
        return replace(record, legs=[replace(leg) for leg in record.legs])


__all__ = ["BYPASS", "CallRecorder", "rated"]
