"""Attended transfer (REFER with Replaces, RFC 3891) between two calls of one worker.

The assistant has the caller (call A: she is its bridged callee), puts it on hold and
calls Jan through the switch (call B: she is its caller, Jan its bridged callee). Her
phone then sends a REFER on A whose Refer-To carries ``?Replaces=<B's Call-ID>;to-tag=…;
from-tag=…`` (or a REFER on B replacing A: the same pair, seen from the other side).
pjsua has already declined the REFER with 603 (switch/pjsua/calls.py,
``REFER_TAKEN_OVER``): the switch carries the transfer out itself, here:

* the dialog the Replaces value names is looked up among this worker's legs by Call-ID
  (inbound legs: the INVITE's Call-ID; outbound legs: the one pjsua generated, reported
  with :class:`~switch.worker.seam.LegConnected`). The tags are not compared: every leg
  is one dialog of its own here, so the Call-ID names it;
* one of the two legs must be the bridged callee of its call (the *keeping* call, A) and
  the other the caller of a bridged call (the *giving* call, B);
* B's bridged leg (Jan) moves to A with a new leg id, A bridges its caller with it and
  sends BYE to the assistant's leg (:class:`~switch.call.events.TransferJoined`); B sends
  BYE to the assistant and ends (:class:`~switch.call.events.LegHandedOver`).

Anything else (the other dialog is on another worker, or neither leg is the assistant's
in the shapes above) is refused: both calls stay as they are, the keeping call's record
shows ``transfer_outcome`` "failed" with 603. With several workers the edge's dispatcher
(least load first) almost always puts B on another worker than A: attended transfer
works in one worker only (docs/dialplan.md, "Transfer and outbound calls").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rules.decision import Target
from switch.call.events import CALLER, LegHandedOver, TransferJoined, TransferRequested
from switch.call.states import CallState
from switch.call.transfer import transfer_target
from switch.worker.commands import ActiveCall
from switch.worker.seam import LegTransferRequested

if TYPE_CHECKING:
    from switch.worker.driver import CallDriver

log = logging.getLogger("switch.worker")


def replaced_call_id(replaces: str) -> str:
    """The Call-ID of a Replaces value: ``callid;to-tag=…;from-tag=…`` (RFC 3891 §6.1)."""
    return replaces.split(";", 1)[0].strip()


class AttendedTransfers:
    """Joins two calls of one :class:`CallDriver` (see the module docstring)."""

    def __init__(self, driver: CallDriver) -> None:
        self.driver = driver

    def dialog(self, call_id: str) -> tuple[ActiveCall, int] | None:
        """The call and leg (CALLER for the inbound one) of the dialog ``call_id``."""
        for call in self.driver.calls.values():
            if call.finished is not None:
                continue
            if call.recorder.call_id == call_id and call.caller_handle in call.live:
                return call, CALLER
            for leg, dialog in call.dialogs.items():
                if dialog == call_id and call.legs.get(leg) in call.live:
                    return call, leg
        return None

    def request(self, call: ActiveCall, leg: int, event: LegTransferRequested) -> None:
        assert event.replaces is not None
        other = self.dialog(replaced_call_id(event.replaces))
        pair = self._shape((call, leg), other)
        if pair is None:
            self._refuse(call, leg, event)
            return
        (keep, keep_leg), (give, give_leg) = pair
        self._join(keep, keep_leg, give, give_leg, event)

    @staticmethod
    def _shape(
        one: tuple[ActiveCall, int], two: tuple[ActiveCall, int] | None
    ) -> tuple[tuple[ActiveCall, int], tuple[ActiveCall, int]] | None:
        """((keeping call, its transferor leg), (giving call, its bridged leg)) or None."""
        if two is None or one[0] is two[0]:
            return None
        for (keep, keep_leg), (give, give_leg) in ((one, two), (two, one)):
            keep_flow, give_flow = keep.flow, give.flow
            if keep_flow is None or give_flow is None:
                continue
            if (
                keep_leg != CALLER
                and keep_flow.state is CallState.BRIDGED
                and keep_flow.answered_leg == keep_leg
                and give_leg == CALLER
                and give_flow.state is CallState.BRIDGED
                and give_flow.answered_leg is not None
            ):
                return (keep, keep_leg), (give, give_flow.answered_leg)
        return None

    def _refuse(self, call: ActiveCall, leg: int, event: LegTransferRequested) -> None:
        log.warning(
            "call %s tenant=%s: attended transfer refused: the replaced dialog is not a "
            "bridged call of this worker (another worker holds it, or it is gone)",
            call.recorder.call_id,
            call.tenant,
        )
        text = event.target_user or event.refer_to
        self.driver.feed(call, TransferRequested(leg, None, text, event.at, event.replaces))
        self.driver.run_pending()

    def _join(
        self,
        keep: ActiveCall,
        keep_leg: int,
        give: ActiveCall,
        give_leg: int,
        event: LegTransferRequested,
    ) -> None:
        driver = self.driver
        assert keep.flow is not None
        assert give.flow is not None
        handle = give.legs[give_leg]
        target = self._target(keep, give, give_leg)
        new_leg = keep.flow.next_leg
        # The leg changes calls: its events go to the keeping call from now on.
        give.live.discard(handle)
        give.cancelled.add(give_leg)
        give.recorder.leg_ended(
            give_leg,
            status=200,
            reason="Transferred",
            connected=True,
            cancelled=False,
            at=event.at,
            media=None,
        )
        keep.legs[new_leg] = handle
        keep.live.add(handle)
        driver.commands.by_handle[handle] = (keep, new_leg)
        dialog = give.dialogs.pop(give_leg, None)
        if dialog is not None:
            keep.dialogs[new_leg] = dialog
        keep.recorder.dialling(new_leg, target)
        keep.recorder.leg_connected(new_leg, event.at)
        log.info(
            "call %s tenant=%s: attended transfer: caller joined with %s of call %s",
            keep.recorder.call_id,
            keep.tenant,
            target.ref,
            give.recorder.call_id,
        )
        driver.feed(keep, TransferJoined(keep_leg, new_leg, target, target.ref, event.at))
        driver.feed(give, LegHandedOver(give_leg, event.at))
        driver.run_pending()

    def _target(self, keep: ActiveCall, give: ActiveCall, give_leg: int) -> Target:
        """Whom the caller now talks to: the plan's name for the device when it has one."""
        assert give.flow is not None
        dialled = give.flow.legs[give_leg].target
        user = dialled.uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]
        plan = self.driver.plans.plans.get(keep.tenant) if keep.tenant else None
        named = transfer_target(user, plan, None) if user else None
        if named is not None and named.owner != "external":
            return named
        if dialled.ref.startswith("out:"):  # a call out: name the number, not the class
            return Target(user, dialled.uri, "external", dialled.device)
        return dialled


__all__ = ["AttendedTransfers", "replaced_call_id"]
