"""The queues on the dashboard in headless Chromium (issue 19): who waits, in order, and each
member's status, updated without a reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from switch.control import messages as control
from switch.supervisor.queuemetrics import QueueMetrics
from switch.supervisor.queues import QueueService, QueueSpec
from tests.helpers.web import chromium_page, live_app, needs_chromium

pytestmark = [
    pytest.mark.peer,
    needs_chromium,
]


async def test_waiting_callers_and_member_states_show_and_change(tmp_path: Path) -> None:
    sent: list[control.ToWorker] = []

    async def send(_worker: str, message: control.ToWorker) -> None:
        sent.append(message)

    spec = QueueSpec.model_validate(
        {"members": {"anna": {"uri": "sip:anna@office"}, "ben": {"uri": "sip:ben@office"}}}
    )
    queues = QueueService({"heimbuero": spec}, send, QueueMetrics(CollectorRegistry()))
    async with live_app(tmp_path) as app, chromium_page() as page:
        queues.changed = lambda: app.feed.set_queues(queues.snapshot())
        await page.goto(app.url + "/dashboard")
        await page.locator("#conn.conn-live").wait_for(timeout=10_000)
        assert await page.locator("#queues-card").is_hidden()  # no queue reported yet
        await queues.member_action("ben", "pause")
        for n, tenant in enumerate(("tischlerei", "praxis", "tischlerei")):
            await queues.on_message("w1", control.QueueJoin("heimbuero", f"c{n}", tenant))
        queue = page.locator('#queues [data-queue="heimbuero"]')
        await queue.locator("li.waiter").nth(2).wait_for(timeout=5_000)
        waiters = await queue.locator("li.waiter").all_inner_texts()
        assert [w.split(" · ")[0] for w in waiters] == [
            "1. tischlerei",
            "2. praxis",
            "3. tischlerei",
        ]
        assert waiters[0].endswith("rings anna")  # the first caller rings anna already
        assert "heimbuero · 3 waiting" in await queue.locator(".tenant-name").inner_text()
        anna = queue.locator('[data-member="anna"]')
        assert await anna.get_attribute("class") == "person q-ringing"
        assert await queue.locator('[data-member="ben"]').get_attribute("class") == (
            "person q-paused"
        )
        await queues.member_action("ben", "unpause")
        await queue.locator('[data-member="ben"].q-ringing').wait_for(timeout=5_000)
        assert (await queue.locator("li.waiter").nth(1).inner_text()).endswith("rings ben")
