"""The dashboard's Dictation card in headless Chromium: listed, playable, marked done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switch.worker.announcements import write_tone
from tests.helpers.web import box_message, chromium_page, dashboard_row, live_app, needs_chromium

pytestmark = [
    pytest.mark.peer,
    needs_chromium,
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
    async with live_app(tmp_path, voicemails=True) as board:
        assert board.box is not None
        message = box_message(
            wav, 3.0, kind="dictation", person="jan", call_id="dict", caller="jan", called="*50"
        )
        await board.box.add(message, "full")
        url = board.url
        async with chromium_page() as page:
            row, text = await dashboard_row(page, url, "dictations")
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
    board.feed.close()
