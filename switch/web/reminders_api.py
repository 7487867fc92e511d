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
from typing import Final

from aiohttp import web

from switch.access.policy import Action
from switch.records.reminders import Reminder, ReminderStore
from switch.web.calls_api import Rows, rows_in_scope
from switch.web.guard import Access, declare
from switch.web.messages_api import _may, posted
from switch.web.request import json_response, not_found, scope_of

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

    async def done(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not raw.isdigit():
            return not_found()
        row = await store.get(int(raw))
        if row is None:
            return not_found()
        refused = _may(request, Action.TAKE_MESSAGE, str(row["tenant"]))
        if refused is not None:
            return refused
        changed = await store.mark_done(int(raw), time.time())
        return not_found() if changed is None else json_response(changed)

    take = Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE)
    return [
        declare(web.get("/api/v1/reminders", list_reminders), REMINDERS),
        declare(web.post("/api/v1/reminders", add), take),
        declare(web.post("/api/v1/reminders/{id}/done", done), take),
    ]


__all__ = ["reminders_routes"]
