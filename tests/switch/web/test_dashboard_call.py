"""End to end: a SIPp call through ``rufweiche run`` appears on the dashboard in Chromium."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.processes import DOCS, running
from tests.helpers.sipp import caller, target
from tests.helpers.web import chromium_page, needs_chromium

pytestmark = [
    pytest.mark.peer,
    pytest.mark.timeout(90),
    needs_chromium,
]


async def test_a_real_call_shows_up_live_and_is_counted(tmp_path: Path, make_switch: Any) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    desk = target(tmp_path, "desk", "uas_answer.xml", timeout=30)
    (plans / "test.yaml").write_text(
        f"""
tenant: tischlerei-test
name: Tischlerei Test
numbers: ["+49 30 1234560"]
people:
  jan: {{name: Jan, devices: {{desk: "sip:desk@{desk.address}"}}}}
rules:
  - {{name: ring jan, then: [{{ring: [jan.desk], timeout: 10s}}]}}
"""
    )
    switch = make_switch(plans)
    call = caller(tmp_path, switch.sip_port, caller="+4917155501234", hold_ms=4000, timeout=30)
    async with chromium_page(1440, 1000) as page:
        await page.goto(switch.url + "/dashboard")
        await page.locator("#conn.conn-live").wait_for(timeout=10_000)
        await page.evaluate("window.__sameDocument = 1")
        with running(desk.start(), call.start()):
            row = page.locator("#active-calls tr", has_text="tischlerei-test")
            await row.wait_for(timeout=10_000)
            assert "+491********34" in await row.inner_text()  # the caller, masked
            await page.locator("#active-calls", has_text="answered").wait_for(timeout=10_000)
            await row.wait_for(state="detached", timeout=15_000)
            assert await asyncio.to_thread(call.wait, 20) == 0
        today = page.locator('#today tr[data-tenant="tischlerei-test"]')
        await today.wait_for(timeout=5_000)
        assert await page.evaluate("window.__sameDocument") == 1, "no reload"
        assert "4917155501234" not in await page.content()
        if os.environ.get("RUFWEICHE_DOCS_SCREENSHOT"):
            await page.screenshot(path=str(DOCS / "dashboard-real-call.png"), full_page=True)
