"""HTTP API for presence (aiohttp handlers; the supervisor mounts them).

::

    GET /api/v1/presence                                         all tenants
    GET /api/v1/tenants/{tenant}/people/{person}/presence        one person
    PUT /api/v1/tenants/{tenant}/people/{person}/presence        set: {"state", "note"?, "until"?}

Answers are JSON: a person is the same object as the MQTT state message
(:class:`presence.topics.PresenceMessage`). Errors are ``{"error": "<message>"}`` with
404 (unknown tenant or person), 400 (body is not JSON) or 422 (JSON that is not a valid
command: bad state, until in the past, …). No traceback ever reaches a client.

Authentication is the supervisor's business (middleware); these handlers assume the
request may change presence. An auth layer in front talks to them through two request
keys: :data:`TENANTS` (set by it: list only these tenants) and :data:`STATE_SET` (set
here: the state a PUT stored, for its audit log).
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from presence.errors import PresenceError, UnknownPersonError, UnknownTenantError
from presence.hub import PresenceHub
from presence.model import PresenceSource
from presence.topics import COMMAND_MAX_BYTES, decode_command, view_of

PERSON_PATH = "/api/v1/tenants/{tenant}/people/{person}/presence"
ALL_PATH = "/api/v1/presence"
TENANTS: Final[web.RequestKey[frozenset[str]]] = web.RequestKey("presence_tenants")
STATE_SET: Final = web.RequestKey("presence_state_set", str)


def presence_routes(hub: PresenceHub) -> list[web.RouteDef]:
    """Route definitions for ``app.add_routes(...)``, bound to ``hub``."""

    async def get_all(request: web.Request) -> web.Response:
        visible = request.get(TENANTS)
        tenants = {
            tenant: {person: view_of(tenant, person, rec) for person, rec in hub.people(tenant)}
            for tenant in sorted(hub.directory)
            if visible is None or tenant in visible
        }
        return web.json_response({"tenants": tenants})

    async def get_person(request: web.Request) -> web.Response:
        tenant, person = request.match_info["tenant"], request.match_info["person"]
        try:
            record = hub.record(tenant, person)
        except (UnknownTenantError, UnknownPersonError) as exc:
            return _error(404, str(exc))
        return web.json_response(view_of(tenant, person, record))

    async def put_person(request: web.Request) -> web.Response:
        tenant, person = request.match_info["tenant"], request.match_info["person"]
        try:
            hub.record(tenant, person)
        except (UnknownTenantError, UnknownPersonError) as exc:
            return _error(404, str(exc))
        if request.content_length is not None and request.content_length > COMMAND_MAX_BYTES:
            return _error(
                413, f"body of {request.content_length} bytes is over {COMMAND_MAX_BYTES}"
            )
        body = await request.content.read(COMMAND_MAX_BYTES + 1)
        if len(body) > COMMAND_MAX_BYTES:
            return _error(413, f"body is over {COMMAND_MAX_BYTES} bytes")
        try:
            data: Any = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(data, dict):
            return _error(422, f'body must be a JSON object like {{"state": "away"}}, got {data!r}')
        try:
            command = decode_command(json.dumps(data))
            record = hub.apply(tenant, person, command, source=PresenceSource.WEB)
        except PresenceError as exc:  # PayloadError, PresenceValueError
            return _error(422, str(exc))
        view = view_of(tenant, person, record)
        request[STATE_SET] = view["state"]
        return web.json_response(view)

    return [
        web.get(ALL_PATH, get_all),
        web.get(PERSON_PATH, get_person),
        web.put(PERSON_PATH, put_person),
    ]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
