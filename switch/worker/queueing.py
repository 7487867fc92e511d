"""The worker's side of the queues (issue 19): call-flow commands out, supervisor words in.

A waiting caller stays on this worker (its caller leg and one reserved leg, counted by
:class:`~switch.call.admission.LegBudget`); the queue itself lives in the supervisor.
:class:`QueueDesk` only translates: the flow's :class:`JoinQueue`, :class:`QueueAnswered`,
:class:`QueueOfferFailed` and :class:`RequestCallback` become control messages, and the
supervisor's ``QueueOffer``, ``QueueUpdate`` and ``QueueGiveUp`` become call-flow events
for the call they name. Feature codes of queue members (``*45`` log in, ``*46`` log out,
``*47`` pause, ``*48`` end the pause) are classified by
:func:`~switch.call.features.classify_feature` like every ``*`` code — a
:class:`~switch.call.features.QueueMemberCode` only from a phone a plan lists (a person's
or the service's ``sip:`` device, as for calls out), 403 from anywhere else (the trunk;
the edge never lets the trunk dial them at all) — and sent on here as ``QueueMember``.

Callbacks (``QueueCallBack``): the supervisor picked a free member for a callback request.
The desk rings the member first (From: "Rückruf <business>" with the business's number);
when she answers (``QueueResult`` answered) it calls the caller back through the tenant's
trunk with the business's number (in the header the trunk's profile prescribes,
``outbound_leg``, as ``*8<code>#`` shows it), bridges the two on the caller's 200, and
reports ``QueueCallbackDone`` when either side ends.
The member not answering within the offer's timeout is ``QueueResult`` not answered (the
supervisor offers the callback to the next member). A callback is not a call of a
business's plan: it leaves no call record (the queue's figures and the API count it).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from rules.decision import Target
from switch.call.events import (
    Command,
    Event,
    JoinQueue,
    QueueAnswered,
    QueueGaveUp,
    QueueOffered,
    QueueOfferFailed,
    QueueStatus,
    RequestCallback,
)
from switch.call.features import QueueMemberCode
from switch.call.outbound import OutboundCall, presented_number
from switch.call.sipheaders import from_header, resolve_target
from switch.call.trunkident import trunk_for
from switch.control import messages as control
from switch.errors import LegUnavailable, UnroutableTarget
from switch.masking import loggable_number
from switch.worker.commands import ActiveCall, outbound_leg
from switch.worker.seam import LegConnected, LegEnded, LegEvent

if TYPE_CHECKING:
    from switch.worker.driver import CallDriver

log = logging.getLogger("switch.worker.queues")

QUEUE_COMMANDS: Final = (JoinQueue, QueueAnswered, QueueOfferFailed, RequestCallback)
CALLBACK_PREFIX: Final = "Rückruf"


def to_supervisor(command: Command, call_id: str, tenant: str) -> control.FromWorker | None:
    """The control message for one of the flow's queue commands."""
    if isinstance(command, JoinQueue):
        return control.QueueJoin(command.queue, call_id, tenant)
    if isinstance(command, QueueAnswered):
        return control.QueueResult(command.queue, call_id, command.member, answered=True)
    if isinstance(command, QueueOfferFailed):
        return control.QueueResult(command.queue, call_id, command.member, answered=False)
    if isinstance(command, RequestCallback):
        return control.QueueCallback(command.queue, call_id, tenant, command.number)
    return None


def to_flow(message: control.QueueOffer | control.QueueUpdate | control.QueueGiveUp) -> Event:
    """The call-flow event of a supervisor's queue message."""
    at = time.monotonic_ns()
    if isinstance(message, control.QueueOffer):
        queue = message.ref.partition(".")[0]
        target = Target(message.ref, message.uri, message.member, queue, is_service=True)
        return QueueOffered(message.member, target, message.timeout, at)
    if isinstance(message, control.QueueUpdate):
        return QueueStatus(message.position, message.wait, at, message.digit)
    return QueueGaveUp(message.reason, at)


@dataclass(slots=True)
class Callback:
    """One callback being placed: the member's leg, then the caller's."""

    request: control.QueueCallBack
    member_leg: int
    member_deadline: int  # monotonic ns: the member did not answer by then
    caller_leg: int | None = None
    member_answered: bool = False
    caller_answered: bool = False
    done: bool = False


class QueueDesk:
    """The queue side of one :class:`CallDriver` (see the module docstring)."""

    def __init__(self, driver: CallDriver) -> None:
        self.driver = driver
        self.callbacks: dict[int, Callback] = {}  # handle (either leg) -> its callback
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ waiting callers

    def takes(self, call: ActiveCall, command: Command) -> bool:
        """Send a queue command of the flow to the supervisor; False for any other."""
        if not isinstance(command, QUEUE_COMMANDS):
            return False
        message = to_supervisor(command, call.recorder.call_id, call.tenant)
        if message is not None:
            self.driver.send(message)
        return True

    def on_message(self, message: control.QueueToWorker) -> None:
        """The supervisor's word about a caller waiting here, or a callback to place."""
        if isinstance(message, control.QueueCallBack):
            self.place(message)
            return
        driver = self.driver
        for call in list(driver.calls.values()):
            if call.recorder.call_id == message.call_id:
                driver.feed(call, to_flow(message))
                driver.run_pending()
                return
        log.info("queue message for call %s, which is no longer here", message.call_id)

    def member_code(self, call: ActiveCall, code: QueueMemberCode) -> None:
        """A member's ``*45``..``*48`` (classified, from a plan's phone): sent on, answered."""
        self.driver.send(control.QueueMember(code.member, code.action))
        log.info("queue member %s: %s", code.member, code.action)
        self.driver.features.done(call)

    # ------------------------------------------------------------------ callbacks

    def place(self, request: control.QueueCallBack) -> None:
        """Ring the member for a callback (the caller follows once she answers)."""
        driver = self.driver
        plan = next((p for p in driver.plans if p.tenant == request.tenant), None)
        number = presented_number(plan, "") if plan is not None else None
        display = f"{CALLBACK_PREFIX} {plan.announce_as if plan is not None else request.tenant}"
        handle = self._dial(request.uri, from_header(display, number, driver.config.sip), [])
        if handle is None:
            driver.send(control.QueueResult(request.queue, request.ref, request.member, False))
            return
        deadline = time.monotonic_ns() + int(request.timeout * 1e9)
        self.callbacks[handle] = Callback(request, handle, deadline)
        log.info("queue %s: callback %s rings %s", request.queue, request.ref, request.member)

    def _dial(self, uri: str, sender: str, headers: list[tuple[str, str]]) -> int | None:
        driver = self.driver
        if driver.draining or not driver.budget.admits(driver.sip.legs_in_use):
            return None
        try:
            target = resolve_target(uri, driver.config.routes, driver.config.trunk)
            return driver.sip.dial(target, sender, headers)
        except (LegUnavailable, UnroutableTarget) as exc:
            log.warning("queue callback: %s not dialled: %s", uri, exc)
            return None

    def _call_caller(self, cb: Callback) -> None:
        """The member answered: the caller's leg through the tenant's trunk."""
        request, driver = cb.request, self.driver
        plan = next((p for p in driver.plans if p.tenant == request.tenant), None)
        business = presented_number(plan, "") if plan is not None else None
        host = driver.config.sip
        display = plan.announce_as if plan is not None else request.tenant
        uri = f"tel:{request.number}"
        line = trunk_for(driver.config.trunks, request.tenant)
        if line is not None:
            uri = resolve_target(uri, driver.config.routes, driver.config.trunk)
        if business is None:  # the business's plan is gone: nobody to call back for
            log.warning("queue callback of %s: no plan, not placed", request.tenant)
            self._over(cb)
            return
        # The business's number as the trunk's profile wants it, as any call placed for it.
        shown = OutboundCall(request.tenant, "", request.number, "callback", business,
                             privacy=False, announce_as=display)  # fmt: skip
        uri, sender, headers = outbound_leg(shown, line, uri, host)
        handle = self._dial(uri, sender, headers)
        if handle is None:
            self._over(cb)
            return
        cb.caller_leg = handle
        self.callbacks[handle] = cb
        log.info("queue %s: callback %s calls %s", request.queue, request.ref,
                 loggable_number(request.number))  # fmt: skip

    def leg_event(self, event: LegEvent) -> None:
        """A leg event of a callback's leg (the driver knows no call for its handle)."""
        cb = self.callbacks.get(event.handle)
        if cb is None:
            return
        request = cb.request
        if isinstance(event, LegConnected) and event.handle == cb.member_leg:
            cb.member_answered = True
            self.driver.send(control.QueueResult(request.queue, request.ref, request.member, True))
            self._call_caller(cb)
        elif isinstance(event, LegConnected) and event.handle == cb.caller_leg:
            cb.caller_answered = True
            self.driver.sip.bridge(cb.member_leg, event.handle)
        elif isinstance(event, LegEnded):
            self.callbacks.pop(event.handle, None)
            if event.handle == cb.member_leg and not cb.member_answered:
                cb.done = True  # she did not answer: the supervisor tries the next member
                self.driver.send(
                    control.QueueResult(request.queue, request.ref, request.member, False)
                )
            self._over(cb)

    def _over(self, cb: Callback) -> None:
        """End whatever is left of a callback; report it once when the member had it."""
        for handle in (cb.member_leg, cb.caller_leg):
            if handle is not None and self.callbacks.pop(handle, None) is not None:
                self.driver.sip.end(handle)
        if not cb.done:
            cb.done = True
            request = cb.request
            self.driver.send(
                control.QueueCallbackDone(
                    request.queue, request.ref, request.member, cb.caller_answered
                )
            )

    def fire_timers(self, now: int | None = None) -> None:
        """A member who did not answer a callback in time: her leg is cancelled."""
        now = time.monotonic_ns() if now is None else now
        for handle, cb in list(self.callbacks.items()):
            if handle == cb.member_leg and not cb.member_answered and now >= cb.member_deadline:
                cb.member_deadline = now + 3_600 * 10**9  # once
                self.driver.sip.end(handle)  # LegEnded follows: QueueResult not answered


__all__ = ["QUEUE_COMMANDS", "QueueDesk", "to_flow", "to_supervisor"]
