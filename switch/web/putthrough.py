"""The console's "put through" (issue 18): the assistant hands a caller to a person.

::

    POST /api/v1/calls/{call_id}/transfer  {"target": "jan.mobile"}
         202 {"call_id", "target", "status": "transferring"}  the worker starts the transfer
         400 no target · 403 not her business's assistant · 404 no such call (or not hers)
         409 the call is not bridged (still ringing, or in a transfer) · 503 worker away

Theory of operation
-------------------
The handler asks the supervisor (:meth:`~switch.supervisor.supervisor.Supervisor.transfer_call`,
given here as a callable so this module needs no supervisor): it knows every call in
progress from the workers' call reports, and which worker holds it. That worker gets a
:class:`~switch.control.messages.TransferCall` and feeds the call flow the same
``TransferRequested`` a REFER from the assistant's phone would (switch/worker/outbound.py),
so the blind transfer of switch/call/transfer.py runs: the caller hears the prompt (or
ringback), the target rings, and the record shows ``transferred_by`` (the assistant's
device) and ``answered_by`` (the target's). The target is a plan name (``jan``,
``jan.mobile``), an extension or a number the business may call; whom it names is the
worker's decision (:func:`~switch.call.transfer.transfer_target`), as for a REFER.
202 means the transfer started, not that the target answered: the page sees that on the
event stream (a ``call`` event with the new ``answered_by``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from switch.access.policy import Action, Principal, can
from switch.call.calllog import CallRecord
from switch.web.guard import Access, declare
from switch.web.request import PRINCIPAL, json_body, json_error, json_response, not_found

CallLookup = Callable[[str], CallRecord | None]
Transfer = Callable[[str, str, str | None], Awaitable[str]]


def putthrough_routes(lookup: CallLookup, transfer: Transfer) -> list[web.RouteDef]:
    """The route, declared for the assistant of the call's business (checked per call)."""

    async def put_through(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        body = await json_body(request, "put through")
        if isinstance(body, web.Response):
            return body
        target = body.get("target") if isinstance(body, dict) else None
        if not isinstance(target, str) or not target.strip() or len(target) > 64:
            return json_error(400, 'put through: {"target": "jan.mobile"} is required')
        record = lookup(call_id)
        who = request.get(PRINCIPAL)
        if record is None or (isinstance(who, Principal) and not who.sees_tenant(record.tenant)):
            return not_found()
        if isinstance(who, Principal) and not can(who, Action.TAKE_MESSAGE, record.tenant):
            return json_error(
                403, f"{who.role.value} may not put calls of {record.tenant!r} through"
            )
        by = who.name if isinstance(who, Principal) else None
        status = await transfer(call_id, target.strip(), by)
        if status == "unknown":
            return not_found()
        if status == "not_bridged":
            return json_error(409, "put through: the call is not bridged (answer it first)")
        if status != "sent":
            return json_error(503, "put through: the worker holding the call is not reachable")
        return json_response(
            {"call_id": call_id, "target": target.strip(), "status": "transferring"}, status=202
        )

    return [
        declare(
            web.post("/api/v1/calls/{call_id}/transfer", put_through),
            Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE),
        )
    ]


__all__ = ["putthrough_routes"]
