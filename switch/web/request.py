"""What the guard puts on a request, and the JSON answers every handler gives.

The guard (:mod:`switch.web.guard`) decides once per request who is asking
(:data:`PRINCIPAL`) and what they may see (:data:`SCOPE`, a
:class:`~switch.access.policy.Scope`); handlers read these and filter themselves.
Without a users file (open mode, loopback only) neither key is set:
:func:`scope_of` then answers "everything", narrowed to ``?tenant=`` when asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from switch.access.audit import AuditLog
from switch.access.policy import EVERYTHING, Principal, Scope

PRINCIPAL: Final = web.RequestKey("principal", Principal)  # who, for the handlers
SCOPE: Final = web.RequestKey("scope", Scope)  # what they may see of this route's data


@dataclass(frozen=True, slots=True)
class RequestAudit:
    """The audit log bound to one request's principal and source address."""

    log: AuditLog | None
    who: str
    source: str | None

    def __call__(self, event: str, **detail: Any) -> None:
        if self.log is not None:
            self.log.write(event, who=self.who, source=self.source, **detail)


AUDIT: Final = web.RequestKey("audit", RequestAudit)


def scope_of(request: web.Request, *, by_query: bool = True) -> Scope:
    """The request's scope; with ``by_query`` narrowed to ``?tenant=`` when given."""
    scope = request.get(SCOPE) or EVERYTHING
    tenant = request.query.get("tenant") or None
    return scope.narrowed(tenant) if by_query else scope


def audit_read(request: web.Request, **detail: Any) -> None:
    """Note in the audit log that this request read data (nothing in open mode)."""
    write = request.get(AUDIT)
    if write is not None:
        write("data_read", **detail)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with ``default=str`` (datetimes, paths) — the one way handlers answer."""
    return web.json_response(
        data, status=status, headers=headers, dumps=lambda d: json.dumps(d, default=str)
    )


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def json_body(
    request: web.Request, subject: str, not_json: str = "the body is not JSON"
) -> Any:
    """The request's JSON body, or the 400 ``"<subject>: <not_json>"`` (a
    :class:`web.Response`, which no JSON value is) when it is not JSON or not UTF-8."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, f"{subject}: {not_json}")


async def json_object(
    request: web.Request,
    subject: str,
    *,
    not_json: str = "the body is not JSON",
    not_object: str = "a JSON object was expected",
) -> dict[str, Any] | web.Response:
    """:func:`json_body` that must be a JSON object (else the 400 ``"<subject>: <not_object>"``)."""
    body = await json_body(request, subject, not_json)
    if isinstance(body, dict | web.Response):
        return body
    return json_error(400, f"{subject}: {not_object}")


def not_found() -> web.Response:
    # The same body for a tenant (or file, or row) that does not exist and one that is
    # not theirs: nothing to tell them apart.
    return json_error(404, "not found")
