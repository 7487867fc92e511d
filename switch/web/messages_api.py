"""``/api/v1/messages``: messages for the owner (Telefonnotiz, issue 18).

::

    POST /api/v1/messages                 the assistant takes one (JSON: tenant, concern,
                                          caller_name, number, urgency, callback, call_id)
    GET  /api/v1/messages[?tenant=]       the owner his own; the assistant her businesses'
    POST /api/v1/messages/{id}/done       the owner marks one done

The tenant of a new message is in its body and that of ``done`` in the stored row, so
these handlers check them against the policy themselves (the same 404 for another's
tenant as for one that does not exist; 403 for a tenant they see but may not change).
The desk is :class:`switch.supervisor.messages.MessageDesk`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from aiohttp import web

from switch.access.policy import Action, Principal, can
from switch.errors import MessageError
from switch.records.messages import Message
from switch.web.calls_api import Rows, rows_in_scope
from switch.web.guard import Access, declare
from switch.web.request import (
    PRINCIPAL,
    json_body,
    json_error,
    json_response,
    not_found,
    scope_of,
)

if TYPE_CHECKING:
    from switch.supervisor.messages import MessageDesk

MESSAGES: Final = Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE, tenant="query")


def _may(request: web.Request, action: Action, tenant: str) -> web.Response | None:
    """None when the request may do ``action`` on ``tenant``, else its answer."""
    who = request.get(PRINCIPAL)
    if who is None:  # open mode (no users file, loopback only)
        return None
    assert isinstance(who, Principal)
    if not who.sees_tenant(tenant):
        return not_found()
    if not can(who, action, tenant):
        return json_error(403, f"{who.role.value} may not {action.value} for {tenant!r}")
    return None


class _Tenanted(Protocol):
    @property
    def tenant(self) -> str: ...


T = TypeVar("T", bound=_Tenanted)


async def posted(
    request: web.Request, what: str, parse: Callable[[object, str, float], T]
) -> T | web.Response:
    """The new item a POST's JSON body describes, ``parse(body, who, now)``, when the caller
    may take messages for its tenant; else the answer (400, 403 or 404). Messages and
    reminders (:mod:`switch.web.reminders_api`) are taken this way."""
    body = await json_body(request, what)
    if isinstance(body, web.Response):
        return body
    who = request.get(PRINCIPAL)
    try:
        item = parse(body, who.name if who is not None else "open", time.time())
    except MessageError as exc:
        return json_error(400, str(exc))
    refused = _may(request, Action.TAKE_MESSAGE, item.tenant)
    return item if refused is None else refused


async def marked_done(
    request: web.Request,
    action: Action,
    tenant_of: Callable[[int], Awaitable[str | None]],
    mark: Callable[[int], Awaitable[dict[str, Any] | None]],
) -> web.Response:
    """``POST …/{id}/done``: the row ``mark`` changed; 404 for an id that is not a number,
    unknown or of a tenant the caller does not see, 403 when it may not do ``action``."""
    raw = request.match_info["id"]
    if not raw.isdigit():
        return not_found()
    tenant = await tenant_of(int(raw))
    if tenant is None:
        return not_found()
    refused = _may(request, action, tenant)
    if refused is not None:
        return refused
    row = await mark(int(raw))
    return not_found() if row is None else json_response(row)


def messages_routes(desk: MessageDesk) -> list[web.RouteDef]:
    async def list_messages(request: web.Request) -> web.Response:
        async def fetch(tenant: str | None) -> Rows:
            return await desk.list(tenant)

        rows = await rows_in_scope(scope_of(request), fetch, order="taken_at", limit=100)
        return json_response({"messages": rows})

    async def take(request: web.Request) -> web.Response:
        message = await posted(request, "message", Message.from_request)
        if isinstance(message, web.Response):
            return message
        row = await desk.take(message)
        return json_response(row, status=201)

    async def done(request: web.Request) -> web.Response:
        return await marked_done(request, Action.DONE_MESSAGE, desk.tenant_of, desk.mark_done)

    return [
        declare(web.get("/api/v1/messages", list_messages), MESSAGES),
        declare(
            web.post("/api/v1/messages", take), Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE)
        ),
        declare(
            web.post("/api/v1/messages/{id}/done", done),
            Access(Action.READ_MESSAGES, Action.DONE_MESSAGE),
        ),
    ]


__all__ = ["messages_routes"]
