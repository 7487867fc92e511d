"""``/api/v1/voicemails``, ``/api/v1/dictations`` and their ``/files/<kind>/...``.

::

    GET  /api/v1/voicemails[?tenant=]                 the newest messages
    GET  /files/voicemail/<tenant>/<file>.wav         one message (audio/wav)
    GET  /api/v1/dictations[?tenant=]                 dictations, with ``done_at``
    POST /api/v1/dictations/{id}/done                 mark one typed up
    GET  /files/dictation/<tenant>/<file>.wav         one dictation

Lists are narrowed to the request's scope (recordings: owners, and ops with the
``recordings`` grant); file names are checked, so no path leaves ``<data_dir>/<kind>``.
The store is :class:`switch.supervisor.voicemail.VoicemailBox`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web

from switch.access.policy import Action
from switch.web.calls_api import Rows, rows_in_scope
from switch.web.guard import Access, Handler, declare
from switch.web.request import audit_read, json_response, not_found, scope_of

if TYPE_CHECKING:
    from switch.supervisor.voicemail import VoicemailBox

_FILE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.wav$")
_TENANT: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RECORDINGS: Final = Access(Action.READ_RECORDINGS, tenant="query")


def _merge_limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    return int(raw) if raw.isdigit() else 100


def voicemail_routes(box: VoicemailBox, data_dir: Path) -> list[web.RouteDef]:
    """The routes, each with its :class:`~switch.web.guard.Access`."""

    def list_handler(kind: str, key: str) -> Handler:
        async def list_rows(request: web.Request) -> web.Response:
            async def fetch(tenant: str | None) -> Rows:
                return await box.list(tenant, kind=kind)

            rows = await rows_in_scope(
                scope_of(request), fetch, order="started_at", limit=_merge_limit(request)
            )
            audit_read(
                request, tenant=request.query.get("tenant") or None, what=key, rows=len(rows)
            )
            return json_response({key: rows})

        return list_rows

    async def dictation_done(request: web.Request) -> web.Response:
        # The same 404 for another tenant's dictation and one that does not exist.
        raw = request.match_info["id"]
        if not raw.isdigit():
            return not_found()
        tenant = await box.tenant_of(int(raw), "dictation")
        if tenant is None or not scope_of(request, by_query=False).sees(tenant):
            return not_found()
        done = await box.mark_done(int(raw), time.time())
        return not_found() if done is None else json_response(done)

    def file_handler(kind: str) -> Handler:
        root = (data_dir / kind).resolve()

        async def get_file(request: web.Request) -> web.StreamResponse:
            tenant, name = request.match_info["tenant"], request.match_info["name"]
            if not _TENANT.match(tenant) or not _FILE.match(name):
                return not_found()
            path = (root / tenant / name).resolve()
            if path.parent != root / tenant or not path.is_file():
                return not_found()
            return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

        return get_file

    one_file = Access(Action.READ_RECORDINGS, tenant="path")
    return [
        declare(web.get("/api/v1/voicemails", list_handler("voicemail", "voicemails")), RECORDINGS),
        declare(web.get("/files/voicemail/{tenant}/{name}", file_handler("voicemail")), one_file),
        declare(web.get("/api/v1/dictations", list_handler("dictation", "dictations")), RECORDINGS),
        # Marking one done is checked against its tenant by the handler (the row names it).
        declare(
            web.post("/api/v1/dictations/{id}/done", dictation_done),
            Access(Action.READ_RECORDINGS, Action.READ_RECORDINGS),
        ),
        declare(web.get("/files/dictation/{tenant}/{name}", file_handler("dictation")), one_file),
    ]
