"""The dashboard in headless Chromium: calls appear and go without a reload.

Runs Debian's /usr/bin/chromium through Playwright (never ``playwright install``), with
the flags of PEERS.md §4. ``RUFWEICHE_DOCS_SCREENSHOT=1`` also writes the populated page
to docs/dashboard.png.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest

from rules.presence import PresenceState
from tests.helpers.processes import DOCS
from tests.helpers.records import make_record, same_call
from tests.helpers.web import LiveApp, chromium_page, live_app, needs_chromium

pytestmark = [
    pytest.mark.peer,
    needs_chromium,
]


async def test_a_call_appears_and_goes_without_reload(tmp_path: Path) -> None:
    async with live_app(tmp_path) as app, chromium_page() as page:
        await page.goto(app.url + "/dashboard")
        await page.locator("#conn.conn-live").wait_for(timeout=10_000)
        await page.evaluate("window.__sameDocument = 42")  # gone if the page reloads
        record = make_record(caller="+4917112345678", started_wall=time.time())
        app.report("started", record)
        row = page.locator(f'#active-calls tr[data-call-id="{record.call_id}"]')
        await row.wait_for(timeout=5_000)
        text = await row.inner_text()
        assert "tischlerei" in text
        assert "+491********78" in text  # masked
        assert "4917112345678" not in await page.content()
        assert await page.locator("#active-count").inner_text() == "1"
        assert await page.locator("#kpi-invite").inner_text() == "1.20ms"
        ended = same_call(record, ended_ms=3000.0, outcome="missed")
        app.report("ended", ended)
        await row.wait_for(state="detached", timeout=5_000)
        assert await page.locator("#active-count").inner_text() == "0"
        assert await page.locator('#today tr[data-tenant="tischlerei"]').count() == 1
        assert await page.evaluate("window.__sameDocument") == 42


async def test_red_flags_and_presence_board(tmp_path: Path) -> None:
    async with live_app(tmp_path) as app, chromium_page(1440, 1000) as page:
        await page.goto(app.url + "/dashboard")
        await page.locator("#conn.conn-live").wait_for(timeout=10_000)
        assert await page.locator("#flags").is_hidden()
        populate(app)
        await page.locator('#flags .flag[data-code="worker_down"]').wait_for(timeout=5_000)
        assert "worker w3 is down" in await page.locator("#flags").inner_text()
        person = page.locator('#presence [data-tenant="tischlerei-mueller"] [data-person="jan"]')
        assert await person.get_attribute("class") == "person s-busy"
        # One JS call: the board is re-rendered on every snapshot, a handle could go stale.
        colour = await page.evaluate(
            """() => getComputedStyle(document.querySelector(
                '#presence [data-tenant="tischlerei-mueller"] [data-person="jan"] .dot'
            )).backgroundColor"""
        )
        assert colour == "rgb(214, 69, 69)"  # busy is red
        assert await page.locator("#active-calls tbody tr").count() == 3
        assert await page.locator('#latency tr[data-hop="invite"] td').nth(3).inner_text() != "—"
        await page.wait_for_timeout(300)  # let the flash animation of new rows finish
        shot = tmp_path / "dashboard.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        if os.environ.get("RUFWEICHE_DOCS_SCREENSHOT") == "1":
            shutil.copyfile(shot, DOCS / "dashboard.png")


def populate(app: LiveApp) -> None:
    """A plausible morning: three businesses, calls in flight, an hour of latency samples."""
    now = time.time()
    rng = random.Random(7)
    window = app.metrics.window
    for minute in range(60, 0, -1):
        t = now - minute * 60
        for _ in range(25):
            window.add("invite", rng.lognormvariate(-6.9, 0.35), t)  # ~1 ms
            window.add("ringing", rng.lognormvariate(-7.6, 0.3), t)
            window.add("answer", rng.lognormvariate(-7.5, 0.3), t)
            window.add("pdd", rng.lognormvariate(-1.2, 0.5), t)
        for _ in range(6):
            window.add("mos", min(4.4, rng.gauss(4.25, 0.08)), t)
            window.add("jitter", rng.uniform(0.001, 0.006), t)
            window.add("rtt", rng.uniform(0.02, 0.06), t)
            window.add("loss", rng.uniform(0, 0.004), t)
    app.set_worker("w1", up=True, in_use=3, capacity=4)
    app.set_worker("w2", up=True, in_use=1, capacity=4)
    app.set_worker("w3", up=False, capacity=4)
    P = PresenceState
    app.feed.set_presence(
        "tischlerei-mueller", {"jan": P.BUSY, "anna": P.AVAILABLE, "werkstatt": P.AWAY}
    )
    app.feed.set_presence("elektro-schulz", {"tom": P.DND, "lea": P.AVAILABLE})
    app.feed.set_presence("heimbuero", {"sabine": P.AVAILABLE, "petra": P.BUSY, "ali": P.OFFLINE})
    for tenant, n, owner, service in (
        ("tischlerei-mueller", 14, 6, 6),
        ("elektro-schulz", 9, 5, 3),
        ("malerei-kraus", 5, 1, 4),
    ):
        for i in range(n):
            by_service = i < service
            answered = i < owner + service
            app.report(
                "ended",
                make_record(
                    tenant=tenant,
                    started_wall=now - 3600 + i * 60,
                    answer_in_ms=8000.0 if answered else None,
                    answer_relayed_ms=8000.4 if answered else None,
                    ended_ms=90_000.0,
                    outcome="answered" if answered else "missed",
                    by_service=by_service,
                ),
            )
    app.report("started", make_record(tenant="elektro-schulz", started_wall=now - 4))
    app.report(
        "answered",
        make_record(
            tenant="tischlerei-mueller",
            caller="+4930555123456",
            started_wall=now - 95,
            answer_in_ms=7000.0,
            answer_relayed_ms=7000.3,
        ),
    )
    app.report(
        "answered",
        make_record(
            tenant="malerei-kraus",
            caller=None,
            started_wall=now - 230,
            answer_in_ms=12000.0,
            answer_relayed_ms=12000.4,
            by_service=True,
            worker="w2",
        ),
    )
