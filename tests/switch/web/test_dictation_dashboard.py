"""The dashboard's Dictation card in headless Chromium: listed, playable, marked done."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switch.metrics import Metrics
from switch.records.writer import RecordWriter
from switch.supervisor.voicemail import VoicemailBox
from switch.web.app import Health, make_app, serve
from switch.web.dashboard import DashboardState, LiveFeed
from switch.web.voicemail_api import voicemail_routes
from switch.worker.announcements import write_tone
from tests.helpers.web import CHROMIUM, chromium_page

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


async def dictations(url: str) -> list[dict[str, Any]]:
    # Not urllib: a blocking read here would stall the server on this very loop.
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.json()
    rows: list[dict[str, Any]] = body["dictations"]
    return rows


async def test_dictation_card_lists_plays_and_marks_done(tmp_path: Path) -> None:
    name = "20261125-030000-dict.wav"
    wav = write_tone(tmp_path / "dictation" / "tischlerei" / name, seconds=3)
    metrics = Metrics()
    feed = LiveFeed(DashboardState(metrics.window), min_interval=0.05, refresh=0.3)
    async with (
        RecordWriter(tmp_path / "calls.sqlite3") as writer,
        VoicemailBox(tmp_path / "calls.sqlite3") as box,
    ):
        message = {
            "kind": "dictation",
            "person": "jan",
            "tenant": "tischlerei",
            "call_id": "dict",
            "caller": "jan",
            "called": "*50",
            "path": str(wav),
            "seconds": 3.0,
            "started_wall": time.time(),
        }
        await box.add(message, "full")
        health = Health(workers=lambda: (1, 1), database_writable=lambda: True, broker=lambda: True)
        app = make_app(writer, metrics, health, None, voicemail_routes(box, tmp_path), feed=feed)
        async with serve(app) as url, chromium_page() as page:
            await page.goto(url + "/dashboard")
            row = page.locator("#dictations tbody tr")
            await row.wait_for(timeout=10_000)
            text = await row.inner_text()
            assert "tischlerei" in text
            assert "jan" in text
            assert "3 s" in text
            src = await row.locator("audio").get_attribute("src")
            assert src == f"/files/dictation/tischlerei/{name}"
            assert await row.locator("a[download]").get_attribute("href") == src
            assert await page.locator("#voicemails tbody tr").count() == 0
            await row.locator("button.mark-done").click()
            await row.locator(".done").wait_for(timeout=5_000)
            (listed,) = await dictations(url + "/api/v1/dictations")
            assert listed["done_at"]
            assert await row.locator("button.mark-done").count() == 0
    feed.close()
