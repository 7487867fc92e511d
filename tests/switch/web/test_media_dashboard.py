"""The dashboard's Voicemail card in headless Chromium: a stored message is listed and playable."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.worker.announcements import write_tone
from tests.helpers.web import box_message, chromium_page, dashboard_row, live_app, needs_chromium

pytestmark = [
    pytest.mark.peer,
    needs_chromium,
]


async def test_voicemail_card_lists_and_plays_a_message(tmp_path: Path) -> None:
    wav = write_tone(tmp_path / "voicemail" / "tischlerei" / "20261125-030000-abc.wav", seconds=2)
    async with live_app(tmp_path, voicemails=True) as board:
        assert board.box is not None
        message = box_message(
            wav, 2.0, call_id="abc", caller="+4917112345678", called="+49301234567"
        )
        await board.box.add(message, "masked")
        async with chromium_page() as page:
            row, text = await dashboard_row(page, board.url, "voicemails")
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
    board.feed.close()
