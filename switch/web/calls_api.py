"""``/api/v1/calls`` and ``/api/v1/usage``: call records and monthly usage, within the scope.

::

    GET /api/v1/calls?tenant=&since=&until=&limit=   recent calls, newest first
    GET /api/v1/usage?month=YYYY-MM[&tenant=]          calls and service minutes per business

Each handler reads the request's :class:`~switch.access.policy.Scope`
(:func:`switch.web.request.scope_of`) and asks the records for that tenant only. The
record queries take one tenant (or all): a scope of several tenants is one query per
tenant, merged newest first here (:func:`rows_in_scope`) — a tenant-set argument is the
records package's to add. An assistant's "calls she answered" is filtered here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from aiohttp import web

from switch.access.policy import Action, Scope
from switch.records.queries import TenantUsage
from switch.web.guard import Access, declare
from switch.web.request import SCOPE, audit_read, json_response, scope_of

MAX_LIMIT: Final = 1000
Rows = list[dict[str, Any]]


class CallQueries(Protocol):
    """What the API needs from the records (a RecordWriter or reader)."""

    async def recent_calls(self, **kwargs: Any) -> Rows: ...

    async def monthly_usage(self, month: str, **kwargs: Any) -> list[TenantUsage]: ...


async def rows_in_scope(
    scope: Scope, fetch: Callable[[str | None], Awaitable[Rows]], *, order: str, limit: int
) -> Rows:
    """The rows ``fetch(tenant)`` gives for the scope's tenants (None: all), newest first
    by ``order``, at most ``limit`` of them, and only those the scope keeps."""
    if scope.tenants is None or len(scope.tenants) == 1:
        rows = await fetch(None if scope.tenants is None else next(iter(scope.tenants)))
    else:
        rows = []
        for tenant in sorted(scope.tenants):
            rows += await fetch(tenant)
        rows.sort(key=lambda row: row.get(order) or 0, reverse=True)
        rows = rows[:limit]
    return [row for row in rows if scope.keeps(row)]


def _time_param(request: web.Request, name: str) -> float | str | None:
    """Unix seconds or ISO 8601 (a naive time is taken as UTC); a str is the problem."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return f"{name} {raw!r} is neither Unix seconds nor ISO 8601"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def query_limit(request: web.Request) -> int | str:
    """``?limit=`` (default 100); a str is the problem."""
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return f"limit {raw!r} is not a number from 1 to {MAX_LIMIT}"
    return int(raw)


def _call_query(request: web.Request) -> dict[str, Any] | str:
    """since, until and limit for the records; a str is the problem (400)."""
    query: dict[str, Any] = {}
    for name in ("since", "until"):
        value = _time_param(request, name)
        if isinstance(value, str):
            return value
        query[name] = value
    limit = query_limit(request)
    if isinstance(limit, str):
        return limit
    query["limit"] = limit
    return query


def calls_routes(records: CallQueries | None) -> list[web.RouteDef]:
    async def get_calls(request: web.Request) -> web.Response:
        if records is None:
            return json_response({"error": "no call records configured"}, status=503)
        query = _call_query(request)
        if isinstance(query, str):
            return json_response({"error": query}, status=400)
        limit = int(query["limit"])

        def fetch(tenant: str | None) -> Awaitable[Rows]:
            assert records is not None
            return records.recent_calls(tenant=tenant, **query)

        calls = await rows_in_scope(scope_of(request), fetch, order="started_wall", limit=limit)
        wanted = request.query.get("tenant") or None
        audit_read(request, tenant=wanted, what="calls", rows=len(calls))
        return json_response({"calls": calls})

    async def get_usage(request: web.Request) -> web.Response:
        if records is None:
            return json_response({"error": "no call records configured"}, status=503)
        month = request.query.get("month", "")
        wanted = request.query.get("tenant") or None
        try:
            usage = await records.monthly_usage(month, tenant=wanted)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        scope = scope_of(request)
        if SCOPE in request:  # behind a login a row without a tenant is nobody's to see
            usage = [u for u in usage if isinstance(u.tenant, str) and scope.sees(u.tenant)]
        audit_read(request, tenant=wanted, what="usage")
        return json_response({"month": month, "tenants": [asdict(u) for u in usage]})

    return [
        declare(web.get("/api/v1/calls", get_calls), Access(Action.READ_CALLS, tenant="query")),
        declare(
            web.get("/api/v1/usage", get_usage),
            Access(Action.READ_USAGE, tenant="query", denied="read usage reports"),
        ),
    ]


__all__ = ["CallQueries", "calls_routes", "rows_in_scope"]
