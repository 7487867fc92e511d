"""The dashboard's Voicemail card in headless Chromium: a stored message is listed and playable."""

from __future__ import annotations

import time
from pathlib import Path

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


async def test_voicemail_card_lists_and_plays_a_message(tmp_path: Path) -> None:
    wav = write_tone(tmp_path / "voicemail" / "tischlerei" / "20261125-030000-abc.wav", seconds=2)
    metrics = Metrics()
    feed = LiveFeed(DashboardState(metrics.window), min_interval=0.05, refresh=0.3)
    async with (
        RecordWriter(tmp_path / "calls.sqlite3") as writer,
        VoicemailBox(tmp_path / "calls.sqlite3") as box,
    ):
        message = {
            "tenant": "tischlerei",
            "call_id": "abc",
            "caller": "+4917112345678",
            "called": "+49301234567",
            "path": str(wav),
            "seconds": 2.0,
            "started_wall": time.time(),
        }
        await box.add(message, "masked")
        health = Health(workers=lambda: (1, 1), database_writable=lambda: True, broker=lambda: True)
        app = make_app(writer, metrics, health, None, voicemail_routes(box, tmp_path), feed=feed)
        async with serve(app) as url, chromium_page() as page:
            await page.goto(url + "/dashboard")
            row = page.locator("#voicemails tbody tr")
            await row.wait_for(timeout=10_000)
            text = await row.inner_text()
            assert "tischlerei" in text
            assert "+491********78" in text
            assert "2 s" in text
            audio = row.locator("audio")
            src = await audio.get_attribute("src")
            assert src == "/files/voicemail/tischlerei/20261125-030000-abc.wav"
            # The browser can load and decode it: its duration is the file's.
            duration = await page.evaluate(
                """async (src) => {
                    const a = new Audio(src);
                    await new Promise((ok, bad) => { a.onloadedmetadata = ok; a.onerror = bad; });
                    return a.duration;
                }""",
                src,
            )
            assert duration == pytest.approx(2.0, abs=0.05)
            assert await page.locator("#voicemails-empty").is_hidden()
    feed.close()
