"""The HTTP app wired around real components on a real socket, and a headless Chromium.

For tests that need the running dashboard (HTTP API, SSE, browser, and later the
end-to-end SIPp call)::

    async with live_app(tmp_path) as board:
        board.report("started", record)          # what the supervisor does per report
        async with chromium_page() as page:
            await page.goto(board.url + "/dashboard")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from switch.call.calllog import CallRecord
from switch.metrics import Metrics
from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from switch.web.app import Health, make_app, serve
from switch.web.dashboard import DashboardState, LiveFeed

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
# PEERS.md §4: without the resolver rule Chromium still looks up Google hosts on eth0.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@dataclass
class LiveApp:
    """The parts the supervisor owns, wired as it wires them, around a running app."""

    url: str
    writer: RecordWriter
    metrics: Metrics
    feed: LiveFeed
    workers: dict[str, bool] = field(default_factory=dict)

    def report(self, phase: str, record: CallRecord, store_caller: str = "full") -> None:
        self.writer.submit(phase, record, store_caller=store_caller)
        self.metrics.observe(phase, record)
        self.feed.observe(phase, record)

    def set_worker(self, name: str, *, up: bool, in_use: int = 0, capacity: int = 4) -> None:
        self.workers[name] = up
        self.metrics.set_worker(name, up=up, in_use=in_use, capacity=capacity)
        self.feed.set_worker(name, up=up, in_use=in_use, capacity=capacity)


@contextlib.asynccontextmanager
async def live_app(
    data_dir: Path,
    *,
    presence_routes: Iterable[web.AbstractRouteDef] | None = None,
    refresh: float = 0.3,
) -> AsyncIterator[LiveApp]:
    """Records in ``data_dir/calls.sqlite3``, fresh metrics and feed, the app on a free port."""
    metrics = Metrics()
    # refresh: a closed page is noticed at the next write, at the latest after this.
    feed = LiveFeed(DashboardState(metrics.window), min_interval=0.05, refresh=refresh)
    workers: dict[str, bool] = {"w1": True}
    async with RecordWriter(data_dir / RECORDS_FILE) as writer:
        health = Health(
            workers=lambda: (sum(workers.values()), len(workers)),
            database_writable=lambda: writer.writable,
            broker=lambda: True,
        )
        app = make_app(writer, metrics, health, presence_routes, feed=feed)
        async with serve(app) as url:
            yield LiveApp(url, writer, metrics, feed, workers)


@contextlib.asynccontextmanager
async def chromium_page(
    width: int = 1280, height: int = 900, extra_http_headers: dict[str, str] | None = None
) -> AsyncIterator[Page]:
    """A page in headless Chromium (Debian's /usr/bin/chromium, never a downloaded one)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(
                viewport={"width": width, "height": height},
                extra_http_headers=extra_http_headers,
            )
            yield page
        finally:
            await browser.close()
