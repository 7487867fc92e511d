"""DialDesk: click to call (issue 17) on the supervisor's side — check, pick a worker, ask it.

``POST /api/v1/calls/dial`` (switch/web/clicktocall.py) ends here, in :meth:`DialDesk.dial`:

1. the business: ``tenant``, or the plan whose ``outbound.business_code`` is ``business``;
2. the permission, the same as for dialling: :func:`~switch.call.outbound.decide_click_to_call`
   (classes, premium blocked, ``*8`` only from the business's service, 110/112 always),
   and whether the API's user may place calls for that business (``permits``);
3. a worker with room for two legs (110/112: any ready worker; it has the reserve);
4. an :class:`~switch.control.messages.Originate`, and the worker's
   :class:`~switch.control.messages.OriginateAnswer` (it checks again, with its per-person
   limits: a limit hit is a 403 here and an ``outbound_limit`` line in the audit log).

Every request, allowed or not, is one ``click_to_call`` line in the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from switch.call.admission import WORKER_LEGS
from switch.call.outbound import Refused, decide_click_to_call
from switch.control import messages as control
from switch.masking import loggable_number

if TYPE_CHECKING:
    from switch.control.pool import WorkerProcess
    from switch.supervisor.supervisor import Supervisor

log = logging.getLogger("rufweiche")

ANSWER_TIMEOUT_S: Final = 5.0
"""How long the API waits for the worker's answer (it answers at once; a hung worker is 503)."""


@dataclass(frozen=True, slots=True)
class DialResult:
    """What became of one request: 202 (the person's phone rings), 400/403/404/503."""

    status: int
    reason: str
    call_id: str | None = None
    tenant: str | None = None


class DialDesk:
    """Click-to-call requests of one supervisor (see the module docstring)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._pending: dict[str, asyncio.Future[control.OriginateAnswer]] = {}

    async def dial(
        self,
        *,
        ring: str,
        number: str,
        tenant: str | None = None,
        business: str | None = None,
        by: str | None = None,
        source: str | None = None,
        permits: Callable[[str], bool] = lambda _tenant: True,
    ) -> DialResult:
        result = await self._dial(ring, number, tenant, business, by, permits)
        audit = self.supervisor.audit
        if audit is not None:
            audit.write("click_to_call", who=by, source=source, tenant=result.tenant or tenant,
                        ok=result.status == 202, status=result.status, reason=result.reason,
                        ring=ring, number=number, business=business,
                        call_id=result.call_id)  # fmt: skip
        log.info("click to call by %s: %s -> %s: %d %s", by, ring, loggable_number(number),
                 result.status, result.reason)  # fmt: skip
        return result

    async def _dial(
        self,
        ring: str,
        number: str,
        tenant: str | None,
        business: str | None,
        by: str | None,
        permits: Callable[[str], bool],
    ) -> DialResult:
        plans = self.supervisor.plans
        if tenant is None and business is not None:
            chosen = next((p for p in plans if p.spec.outbound.business_code == business), None)
            tenant = chosen.tenant if chosen is not None else None
            if tenant is None:
                return DialResult(404, f"No business with code {business}")
        if tenant is None:
            return DialResult(400, "No business named")
        if not permits(tenant):
            return DialResult(403, f"Not permitted to place calls for {tenant}", tenant=tenant)
        decided = decide_click_to_call(plans, tenant, ring, number, business)
        if isinstance(decided, Refused):
            return DialResult(decided.status, decided.reason, tenant=decided.tenant or tenant)
        billed = decided.call.tenant
        if not permits(billed):
            return DialResult(403, f"Not permitted to place calls for {billed}", tenant=billed)
        worker = self._worker(emergency=decided.call.emergency)
        if worker is None:
            return DialResult(503, "No worker has room for the call", tenant=billed)
        request = uuid.uuid4().hex
        message = control.Originate(request, tenant, ring, number, business, by)
        future: asyncio.Future[control.OriginateAnswer] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        try:
            if not await worker.send(message):
                return DialResult(503, "The worker is not reachable", tenant=billed)
            answer = await asyncio.wait_for(future, ANSWER_TIMEOUT_S)
        except TimeoutError:
            return DialResult(503, "The worker did not answer", tenant=billed)
        finally:
            self._pending.pop(request, None)
        return DialResult(answer.status, answer.reason, answer.call_id, billed)

    def _worker(self, *, emergency: bool) -> WorkerProcess | None:
        """The ready worker with the most free legs, if it has two for this call."""
        reserve = 0 if emergency else self.supervisor.settings.emergency_reserve
        ready = [w for w in self.supervisor.workers if w.ready.is_set()]
        if not ready:
            return None
        best = max(ready, key=lambda w: (w.capacity or WORKER_LEGS) - w.legs_in_use)
        free = (best.capacity or WORKER_LEGS) - best.legs_in_use - reserve
        return best if free >= 2 else None  # the person's leg and the customer's

    def answered(self, message: control.OriginateAnswer) -> None:
        """A worker's answer: the waiting request gets it (a late one is dropped)."""
        future = self._pending.get(message.request)
        if future is not None and not future.done():
            future.set_result(message)


__all__ = ["ANSWER_TIMEOUT_S", "DialDesk", "DialResult"]
