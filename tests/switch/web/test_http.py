"""The HTTP side on a real socket: /metrics, /healthz, /api/v1/calls, server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from switch.metrics import Metrics
from switch.records.queries import month_bounds
from switch.records.writer import RecordWriter
from switch.web.app import Health, HealthReport, make_app, serve
from switch.web.dashboard import DashboardState, LiveFeed
from tests.helpers.records import make_record, same_call
from tests.helpers.web import LiveApp, live_app


@pytest.fixture
async def switchboard(tmp_path: Path) -> AsyncIterator[LiveApp]:
    async with live_app(tmp_path) as app:
        yield app


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_metrics_endpoint_parses_as_prometheus_text(switchboard: LiveApp) -> None:
    switchboard.report("ended", make_record(ended_ms=900.0, outcome="missed"))
    status, content_type, body = await get(switchboard.url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert "rufweiche_added_delay_seconds" in families
    (calls,) = [s for s in families["rufweiche_calls"].samples if s.name.endswith("_total")]
    assert calls.labels == {"tenant": "tischlerei", "outcome": "missed"}
    assert calls.value == 1


async def test_healthz_reports_readiness(switchboard: LiveApp) -> None:
    status, _, body = await get(switchboard.url + "/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["live"] is True
    assert health["ready"] is True
    assert health["workers_up"] == 1
    assert health["database_writable"] is True
    assert health["broker_connected"] is True
    switchboard.workers["w1"] = False
    status, _, body = await get(switchboard.url + "/healthz")
    assert status == 503
    assert json.loads(body)["ready"] is False


async def test_healthz_with_an_async_or_failing_provider() -> None:
    async def ready() -> HealthReport:
        return HealthReport(2, 2, True)

    def broken() -> HealthReport:
        raise RuntimeError("database probe timed out")

    for provider, expected in ((ready, 200), (broken, 503)):
        async with serve(make_app(None, Metrics(), provider)) as url:
            status, _, body = await get(url + "/healthz")
        assert status == expected, body


async def test_api_calls_filters(switchboard: LiveApp) -> None:
    nov, _ = month_bounds("2026-11")
    switchboard.report("started", make_record(tenant="tischlerei", started_wall=nov + 10))
    switchboard.report(
        "ended",
        make_record(tenant="elektro", started_wall=nov + 20, ended_ms=5, outcome="rejected"),
    )
    await switchboard.writer.flush()
    status, content_type, body = await get(switchboard.url + "/api/v1/calls")
    assert status == 200
    assert content_type.startswith("application/json")
    assert [c["tenant"] for c in json.loads(body)["calls"]] == ["elektro", "tischlerei"]
    _, _, body = await get(switchboard.url + "/api/v1/calls?tenant=tischlerei&limit=5")
    (call,) = json.loads(body)["calls"]
    assert call["active"] is True
    _, _, body = await get(switchboard.url + f"/api/v1/calls?since={nov + 15}")
    assert [c["tenant"] for c in json.loads(body)["calls"]] == ["elektro"]
    _, _, body = await get(switchboard.url + "/api/v1/calls?until=2026-11-01T00:00:15Z")
    assert [c["tenant"] for c in json.loads(body)["calls"]] == ["tischlerei"]
    status, _, body = await get(switchboard.url + "/api/v1/calls?limit=0")
    assert status == 400
    assert "limit '0'" in json.loads(body)["error"]
    status, _, body = await get(switchboard.url + "/api/v1/calls?since=yesterday")
    assert status == 400
    assert "since 'yesterday'" in json.loads(body)["error"]
    status, _, body = await get(switchboard.url + "/api/v1/usage?month=2026-11")
    assert status == 200
    assert {t["tenant"]: t["calls"] for t in json.loads(body)["tenants"]} == {
        "elektro": 1,
        "tischlerei": 1,
    }
    status, _, _ = await get(switchboard.url + "/api/v1/usage?month=November")
    assert status == 400


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    event, data = "", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            assert event == "snapshot"
            yield json.loads(data)
            event, data = "", ""


async def test_events_stream_pushes_a_submitted_call(switchboard: LiveApp) -> None:
    record = make_record(caller="+4917112345678", started_wall=time.time())
    async with (
        aiohttp.ClientSession() as session,
        session.get(switchboard.url + "/api/v1/events") as response,
    ):
        assert response.headers["Content-Type"] == "text/event-stream"
        events = read_events(response)
        first = await asyncio.wait_for(anext(events), 5)
        assert first["active_calls"] == []
        switchboard.report("started", record)
        second = await asyncio.wait_for(anext(events), 5)
        (call,) = second["active_calls"]
        assert call["call_id"] == record.call_id
        assert call["caller"] == "+491********78"  # masked on the page
        assert second["latency"]["invite"]["now"]["n"] == 1
        ended = same_call(record, ended_ms=2000.0, outcome="missed")
        switchboard.report("ended", ended)
        third = await asyncio.wait_for(anext(events), 5)
        assert third["active_calls"] == []
        assert third["today"] == [
            {
                "tenant": "tischlerei",
                "calls": 1,
                "answered_owner": 0,
                "answered_service": 0,
                "missed": 1,
            }
        ]
    for _ in range(100):  # the server notices the closed stream
        if switchboard.feed.subscribers == 0:
            break
        await asyncio.sleep(0.02)
    assert switchboard.feed.subscribers == 0


async def test_shutdown_ends_open_event_streams(tmp_path: Path) -> None:
    metrics = Metrics()
    feed = LiveFeed(DashboardState(metrics.window))
    app = make_app(None, metrics, lambda: HealthReport(1, 1, True), feed=feed)
    loop = asyncio.get_running_loop()
    async with serve(app) as url:
        session = aiohttp.ClientSession()
        response = await session.get(url + "/api/v1/events")
        await response.content.readline()
        t0 = loop.time()
    assert loop.time() - t0 < 1.5
    response.close()
    await session.close()


async def test_dashboard_static_presence_and_extra_routes() -> None:
    async def board(request: web.Request) -> web.Response:
        return web.json_response({"tenant": request.match_info["tenant"]})

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = make_app(
        None,
        Metrics(),
        lambda: HealthReport(1, 1, True),
        presence_routes=[web.get("/api/v1/presence/{tenant}", board)],
        extra_routes=[web.get("/hello", hello)],
    )
    async with serve(app) as url:
        status, content_type, body = await get(url + "/dashboard")
        assert status == 200
        assert content_type.startswith("text/html")
        assert "Rufweiche" in body
        status, _, body = await get(url + "/api/v1/presence/tischlerei")
        assert json.loads(body) == {"tenant": "tischlerei"}
        assert (await get(url + "/hello"))[2] == "hello"
        status, _, _ = await get(url + "/")  # redirects to the dashboard
        assert status == 200
        status, _, _ = await get(url + "/api/v1/events")
        assert status == 501  # no feed configured
        status, _, _ = await get(url + "/api/v1/calls")
        assert status == 503  # no records configured


async def test_health_of_the_running_parts(tmp_path: Path) -> None:
    metrics = Metrics()
    feed = LiveFeed(DashboardState(metrics.window))
    async with RecordWriter(tmp_path / "r.db", busy_timeout=0.1) as writer:
        await writer.flush()  # the start-up clean-up is queued first
        health = Health.of(writer, feed, broker=lambda: False)
        assert health().ready is False  # no worker reported yet
        feed.set_worker("w1", up=True, in_use=0, capacity=4)
        feed.set_worker("w2", up=False)
        report = health()
        assert (report.workers_up, report.workers_total) == (1, 2)
        assert report.ready is True
        assert report.broker_connected is False
        records = report.detail.pop("records")
        assert report.detail == {
            "records_queued": 0,
            "spool_pending": False,
            "last_database_error": None,
        }
        assert records["state"] == "durable"  # issue 14
        assert (records["backlog"], records["lost"]) == (0, 0)
