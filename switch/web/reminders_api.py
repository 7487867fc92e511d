"""``/api/v1/reminders``: "call back later" on the assistant's console (issue 18).

::

    POST /api/v1/reminders                the assistant sets one (JSON: tenant, note, due
                                          (ISO 8601) or in_minutes, number, caller_name,
                                          call_id)
    GET  /api/v1/reminders[?tenant=]      the open ones of the businesses she serves, soonest
                                          first
    POST /api/v1/reminders/{id}/done      done (called back)

When one is due, :mod:`switch.supervisor.reminders` pushes it to the console's event stream
(``event: reminder``). Tenant checks as for messages (:mod:`switch.web.messages_api`).
"""

from __future__ import annotations

import time
from typing import Any, Final

from aiohttp import web

from switch.access.policy import Action
from switch.records.reminders import Reminder, ReminderStore
from switch.web.calls_api import Rows, rows_in_scope
from switch.web.guard import Access, declare
from switch.web.messages_api import marked_done, posted
from switch.web.request import json_response, scope_of

REMINDERS: Final = Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE, tenant="query")


def reminders_routes(store: ReminderStore) -> list[web.RouteDef]:
    async def list_reminders(request: web.Request) -> web.Response:
        async def fetch(tenant: str | None) -> Rows:
            return await store.list_open(tenant)

        rows = await rows_in_scope(scope_of(request), fetch, order="due_wall", limit=100)
        rows.sort(key=lambda row: (row["due_wall"], row["id"]))
        return json_response({"reminders": rows})

    async def add(request: web.Request) -> web.Response:
        reminder = await posted(request, "reminder", Reminder.from_request)
        if isinstance(reminder, web.Response):
            return reminder
        return json_response(await store.add(reminder), status=201)

    async def tenant_of(row_id: int) -> str | None:
        row = await store.get(row_id)
        return None if row is None else str(row["tenant"])

    async def mark(row_id: int) -> dict[str, Any] | None:
        return await store.mark_done(row_id, time.time())

    async def done(request: web.Request) -> web.Response:
        return await marked_done(request, Action.TAKE_MESSAGE, tenant_of, mark)

    take = Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE)
    return [
        declare(web.get("/api/v1/reminders", list_reminders), REMINDERS),
        declare(web.post("/api/v1/reminders", add), take),
        declare(web.post("/api/v1/reminders/{id}/done", done), take),
    ]


__all__ = ["reminders_routes"]
