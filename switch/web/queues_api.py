"""The queue API (issue 19): what the dashboard, the assistant console (issue 18) and a
member's own tools read and set.

- ``GET /api/v1/queues`` — every queue: who waits (in order, how long, ringing whom), each
  member's status and counts, the figures per business, callback requests;
- ``POST /api/v1/queues/{queue}/members/{member}`` with ``{"action": "login" | "logout" |
  "pause" | "unpause"}`` — the member's new status.

The queues belong to the service, not to one business: reading needs the dashboard right,
setting a member needs the presence right (as for a person's presence).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from switch.access.policy import Action
from switch.web.guard import Access, declare
from switch.web.request import json_response

ACTIONS: Final = ("login", "logout", "pause", "unpause")

Snapshot = Callable[[], dict[str, Any]]
SetMember = Callable[[str, str, str], Awaitable[str]]


def queues_routes(snapshot: Snapshot, set_member: SetMember) -> list[web.RouteDef]:
    async def get_queues(request: web.Request) -> web.Response:
        return json_response(snapshot())

    async def post_member(request: web.Request) -> web.Response:
        queue, member = request.match_info["queue"], request.match_info["member"]
        try:
            body = await request.json()
        except ValueError:
            return json_response({"error": "body is not JSON"}, status=400)
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ACTIONS:
            return json_response({"error": f"action must be one of {list(ACTIONS)}"}, status=400)
        queues = snapshot()["queues"]
        if queue not in queues or member not in queues[queue]["members"]:
            return json_response({"error": f"no member {member!r} in queue {queue!r}"}, status=404)
        status = await set_member(queue, member, action)
        return json_response({"queue": queue, "member": member, "status": status})

    return [
        declare(web.get("/api/v1/queues", get_queues), Access(Action.VIEW_DASHBOARD)),
        declare(
            web.post("/api/v1/queues/{queue}/members/{member}", post_member),
            Access(Action.VIEW_DASHBOARD, write=Action.SET_PRESENCE),
        ),
    ]


__all__ = ["queues_routes"]
