"""The switch's HTTP side: metrics, health, the call API, the live dashboard.

Routes (see docs/operations.md):

- ``GET /metrics`` — Prometheus text format from the switch's own registry;
- ``GET /healthz`` — JSON; 200 when ready (a worker is up and the records database
  takes writes), 503 when alive but not ready;
- ``GET /api/v1/calls?tenant=&since=&until=&limit=`` — recent calls, newest first;
- ``GET /api/v1/usage?month=YYYY-MM[&tenant=]`` — calls and service minutes per business;
- ``GET /api/v1/events`` — server-sent events: a ``snapshot`` event with the whole
  dashboard state on connect and after every change (:class:`switch.web.dashboard.LiveFeed`);
- ``GET /dashboard`` and ``/static/…`` — the page (plain HTML/CSS/JS, no build step);
- whatever ``presence_routes`` and ``extra_routes`` add (the presence API lives in
  :mod:`presence`; this module only mounts it).

:func:`serve` runs an application on a real socket (the supervisor, and tests that
want a browser or SIPp to see it).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from switch.metrics import Metrics
from switch.records.queries import TenantUsage
from switch.records.writer import RecordWriter
from switch.web.dashboard import LiveFeed

if TYPE_CHECKING:
    from switch.web.guard import AuthLayer

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
MAX_LIMIT: Final = 1000


class CallQueries(Protocol):
    """What the API needs from the records (a RecordWriter or reader)."""

    async def recent_calls(self, **kwargs: Any) -> list[dict[str, Any]]: ...

    async def monthly_usage(self, month: str, **kwargs: Any) -> list[TenantUsage]: ...


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Liveness is implied by an answer at all; readiness is :attr:`ready`."""

    workers_up: int
    workers_total: int
    database_writable: bool
    broker_connected: bool | None = None  # None: no broker configured
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.workers_up > 0 and self.database_writable

    def to_json(self) -> dict[str, Any]:
        return {"live": True, "ready": self.ready, **asdict(self)}


HealthProvider = Callable[[], HealthReport | Awaitable[HealthReport]]


@dataclass(slots=True)
class Health:
    """A :data:`HealthProvider` built from the running parts.

    ``workers`` returns (up, total); ``database_writable`` is e.g.
    ``lambda: writer.writable``; ``broker`` returns None when no broker is configured.
    """

    workers: Callable[[], tuple[int, int]]
    database_writable: Callable[[], bool]
    broker: Callable[[], bool | None] = lambda: None
    detail: Callable[[], dict[str, Any]] = dict

    @classmethod
    def of(
        cls,
        writer: RecordWriter,
        feed: LiveFeed,
        broker: Callable[[], bool | None] = lambda: None,
    ) -> Health:
        """Workers as the feed knows them (``feed.set_worker``), the writer's last write,
        and the spool in the detail."""
        workers = feed.state.workers
        return cls(
            workers=lambda: (sum(w.up for w in workers.values()), len(workers)),
            database_writable=lambda: writer.writable,
            broker=broker,
            detail=lambda: {
                "records_queued": writer.queued,
                "spool_pending": writer.spool_pending,
                "last_database_error": writer.stats.last_error,
            },
        )

    def __call__(self) -> HealthReport:
        up, total = self.workers()
        return HealthReport(up, total, self.database_writable(), self.broker(), self.detail())


class BadRequest(ValueError):
    """A query parameter the API cannot use; answered with 400 and the message."""


def _time_param(request: web.Request, name: str) -> float | None:
    """Unix seconds or ISO 8601 (a naive time is taken as UTC)."""
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
        raise BadRequest(f"{name} {raw!r} is neither Unix seconds nor ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _limit_param(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit {raw!r} is not a number from 1 to {MAX_LIMIT}")
    return int(raw)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def make_app(
    records: CallQueries | None,
    metrics: Metrics,
    health: HealthProvider,
    presence_routes: Iterable[web.AbstractRouteDef] | None = None,
    extra_routes: Iterable[web.AbstractRouteDef] = (),
    *,
    feed: LiveFeed | None = None,
    auth: AuthLayer | None = None,
) -> web.Application:
    """The HTTP application; ``feed`` drives ``/api/v1/events`` (501 without one).

    ``auth`` (:class:`switch.web.guard.AuthLayer`) puts login and scope in front of every
    route (docs/security.md); None keeps everything open, for loopback only.
    """

    async def get_metrics(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def get_health(request: web.Request) -> web.Response:
        try:
            report = health()
            if inspect.isawaitable(report):
                report = await report
        except Exception as exc:  # a broken probe means "not ready", never a 500 page
            log.warning("health probe failed: %s", exc)
            return _json({"live": True, "ready": False, "error": str(exc)}, status=503)
        return _json(report.to_json(), status=200 if report.ready else 503)

    async def get_calls(request: web.Request) -> web.Response:
        if records is None:
            return _json({"error": "no call records configured"}, status=503)
        try:
            calls = await records.recent_calls(
                tenant=request.query.get("tenant") or None,
                since=_time_param(request, "since"),
                until=_time_param(request, "until"),
                limit=_limit_param(request),
            )
        except BadRequest as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"calls": calls})

    async def get_usage(request: web.Request) -> web.Response:
        if records is None:
            return _json({"error": "no call records configured"}, status=503)
        month = request.query.get("month", "")
        try:
            usage = await records.monthly_usage(month, tenant=request.query.get("tenant") or None)
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"month": month, "tenants": [asdict(u) for u in usage]})

    async def get_events(request: web.Request) -> web.StreamResponse:
        if feed is None:
            return _json({"error": "no live feed configured"}, status=501)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
            }
        )
        await response.prepare(request)
        stream = feed.stream()
        try:
            # The browser reconnects by itself after 2 s if the stream breaks.
            await response.write(b"retry: 2000\n\n")
            async for snapshot in stream:
                if auth is not None:  # only the tenants this principal may see
                    snapshot = auth.scoped_snapshot(request, snapshot)
                data = json.dumps(snapshot, separators=(",", ":"), default=str)
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
        except ConnectionError:
            pass  # the page was closed: noticed at the next write (<= feed.refresh)
        finally:
            await stream.aclose()  # unsubscribe now, not when the generator is collected
        return response

    async def get_dashboard(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "dashboard.html")

    async def get_root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    async def on_shutdown(app: web.Application) -> None:
        if feed is not None:
            feed.close()

    app = web.Application()
    app.add_routes(
        [
            web.get("/", get_root),
            web.get("/metrics", get_metrics),
            web.get("/healthz", get_health),
            web.get("/api/v1/calls", get_calls),
            web.get("/api/v1/usage", get_usage),
            web.get("/api/v1/events", get_events),
            web.get("/dashboard", get_dashboard),
            web.static("/static", STATIC_DIR),
        ]
    )
    if presence_routes is not None:
        app.add_routes(presence_routes)
    app.add_routes(extra_routes)
    if auth is not None:
        auth.install(app)
    app.on_shutdown.append(on_shutdown)
    return app


@contextlib.asynccontextmanager
async def serve(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, shutdown_timeout: float = 2.0
) -> AsyncIterator[str]:
    """Run ``app`` on ``host:port`` (0: a free port); yields the base URL ``http://h:p``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
