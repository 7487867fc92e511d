"""The switch's HTTP side: metrics, health, the call API, the live dashboard.

Routes (see docs/operations.md):

- ``GET /metrics`` — Prometheus text format from the switch's own registry;
- ``GET /healthz`` — JSON; 200 when ready (a worker is up and the records database
  takes writes), 503 when alive but not ready;
- ``GET /api/v1/calls``, ``GET /api/v1/usage`` — :mod:`switch.web.calls_api`;
- ``GET /api/v1/events`` — server-sent events: a ``snapshot`` event with the whole
  dashboard state on connect and after every change (:class:`switch.web.dashboard.LiveFeed`);
- ``GET /dashboard`` and ``/static/…`` — the page (plain HTML/CSS/JS, no build step);
- whatever ``presence_routes`` and ``extra_routes`` add (the presence API lives in
  :mod:`presence`; this module mounts it and declares its access, since presence/
  cannot import switch).

Every route is made with its :class:`~switch.web.guard.Access` (who may use it, for
which tenant); with ``auth`` the guard enforces it. Unknown paths under ``/api/``,
``/files/`` and ``/static/`` answer a JSON 404 like the rest of the API.

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
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from presence import http as presence_http
from switch.access.policy import EVERYTHING, Action
from switch.metrics import Metrics
from switch.records.writer import RecordWriter
from switch.web.calls_api import CallQueries, calls_routes
from switch.web.dashboard import LiveFeed
from switch.web.guard import PUBLIC, Access, AuthLayer, Handler, declare
from switch.web.request import json_response, not_found, scope_of

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
JSON_404_PREFIXES: Final = ("/api/", "/files/", "/static/")
READ_PRESENCE: Final = Action.READ_PRESENCE

__all__ = ["CallQueries", "Health", "HealthReport", "make_app", "serve"]


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

    def tojson_response(self) -> dict[str, Any]:
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
                "records": writer.health(),
            },
        )

    def __call__(self) -> HealthReport:
        up, total = self.workers()
        return HealthReport(up, total, self.database_writable(), self.broker(), self.detail())


def _declare_presence(routes: Iterable[web.AbstractRouteDef]) -> list[web.AbstractRouteDef]:
    """The presence API's routes with their access: the board lists only the tenants in
    scope (handed to presence through its TENANTS key), one person is checked by tenant."""
    declared: list[web.AbstractRouteDef] = []
    for route in routes:
        if isinstance(route, web.RouteDef) and route.path == presence_http.ALL_PATH:
            declared.append(declare(_board_in_scope(route), Access(READ_PRESENCE, tenant="all")))
        elif isinstance(route, web.RouteDef) and route.path == presence_http.PERSON_PATH:
            access = Access(READ_PRESENCE, Action.SET_PRESENCE, tenant="path")
            declared.append(declare(route, access))
        else:
            declared.append(route)  # undeclared: the guard's default rule
    return declared


def _board_in_scope(route: web.RouteDef) -> web.RouteDef:
    inner = route.handler

    async def board(request: web.Request) -> web.StreamResponse:
        tenants = scope_of(request, by_query=False).tenants
        if tenants is not None:
            request[presence_http.TENANTS] = tenants
        return await inner(request)

    return web.RouteDef(route.method, route.path, board, route.kwargs)


@web.middleware
async def json_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 404 under the API's prefixes is JSON, like every other API answer (issue 14)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith(JSON_404_PREFIXES) or request.path == "/static":
            return not_found()
        raise


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
            return json_response({"live": True, "ready": False, "error": str(exc)}, status=503)
        return json_response(report.tojson_response(), status=200 if report.ready else 503)

    async def get_events(request: web.Request) -> web.StreamResponse:
        if feed is None:
            return json_response({"error": "no live feed configured"}, status=501)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
            }
        )
        await response.prepare(request)
        # Only the tenants this login may see, asked again at every push (auth.scope_now).
        stream = feed.stream(
            (lambda: auth.scope_now(request, Action.VIEW_DASHBOARD)) if auth else lambda: EVERYTHING
        )
        try:
            # The browser reconnects by itself after 2 s if the stream breaks.
            await response.write(b"retry: 2000\n\n")
            async for snapshot in stream:
                data = json.dumps(snapshot, separators=(",", ":"), default=str)
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
        except ConnectionError:
            pass  # the page was closed: noticed at the next write (<= feed.refresh)
        finally:
            await stream.aclose()  # unsubscribe now, not when the generator is collected
        return response

    async def get_dashboard(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "dashboard.html")

    async def get_static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]  # one path segment: never a "/"
        path = STATIC_DIR / name
        if name.startswith(".") or not path.is_file():
            return not_found()
        return web.FileResponse(path)

    async def get_root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    async def on_shutdown(app: web.Application) -> None:
        if feed is not None:
            feed.close()

    app = web.Application()
    app.add_routes(
        [
            declare(web.get("/", get_root), PUBLIC),
            declare(web.get("/metrics", get_metrics), Access(Action.READ_METRICS, loopback=True)),
            declare(web.get("/healthz", get_health), Access(Action.READ_HEALTH, loopback=True)),
            *calls_routes(records),
            declare(web.get("/api/v1/events", get_events), Access(Action.VIEW_DASHBOARD)),
            declare(web.get("/dashboard", get_dashboard), Access(Action.VIEW_DASHBOARD, page=True)),
            # Public: page code only, no data. A handler, not web.static: its 404 is JSON.
            declare(web.get("/static/{name}", get_static), PUBLIC),
        ]
    )
    if presence_routes is not None:
        app.add_routes(_declare_presence(presence_routes))
    app.add_routes(extra_routes)
    if auth is not None:
        auth.install(app)
    app.middlewares.append(json_not_found)  # inside the guard: its headers apply
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
