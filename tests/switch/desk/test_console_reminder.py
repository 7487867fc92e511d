"""End to end (issue 18) in Chromium against ``rufweiche run``: "call back later" on the
card of a real SIPp call — a reminder (time + note) is stored, listed on the console, and
pops over the event stream when it is due; done takes it off; another business's
assistant never sees it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.desk import console_page, http, service_plan, switch_users, write_plans
from tests.helpers.processes import DOCS, running
from tests.helpers.sipp import caller, target
from tests.helpers.web import needs_chromium

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(100),
    needs_chromium,
]
CALLER = "+4917155501234"


async def test_call_back_later_is_listed_and_pops_when_due(
    tmp_path: Path, make_switch: Any
) -> None:
    her_phone = target(tmp_path, "anna", "uas_ring_answer.xml", timeout=30)
    tokens = switch_users(tmp_path)
    head = 'greeting: "Tischlerei Test, Sekretariat, guten Tag"\n'
    switch = make_switch(write_plans(tmp_path, service_plan(her_phone.address, head=head)))
    call = caller(tmp_path, switch.sip_port, caller=CALLER, hold_ms=1000, timeout=30)
    async with console_page(switch.url, tokens["anna"], 1200, 1000) as (page, errors):
        assert await page.locator("#no-reminders").inner_text() == "Kein Rückruf offen."
        with running(her_phone.start(), call.start()):
            card = page.locator("#cards .card")
            await card.wait_for(timeout=10_000)
            await card.get_by_role("button", name="Später zurückrufen").click()
            await card.locator(".r-minutes").fill("0.1")  # 6 s: the test need not wait long
            await card.locator(".r-note").fill("Angebot Dachfenster")
            await card.get_by_role("button", name="Erinnern").click()
            await card.get_by_role("button", name="gespeichert").wait_for(timeout=5000)
            item = page.locator("#reminder-list li", has_text="Angebot Dachfenster")
            await item.wait_for(timeout=5000)
            assert await page.locator("#reminder-pop").is_hidden()  # not due yet
            assert "Tischlerei Test" in await item.inner_text()
            assert await asyncio.to_thread(call.wait, 30) == 0
        pop = page.locator("#reminder-pop", has_text="Jetzt zurückrufen:")
        await pop.wait_for(timeout=15_000)
        assert "Angebot Dachfenster" in await pop.inner_text()
        assert "+4917155501234" in await pop.inner_text()
        await page.locator("#reminder-list li.due", has_text="Angebot Dachfenster").wait_for(
            timeout=5000
        )
        if os.environ.get("RUFWEICHE_DOCS_SCREENSHOT"):
            await page.screenshot(path=str(DOCS / "console.png"))
        stored = http(switch.url + "/api/v1/reminders", tokens["anna"])["reminders"]
        assert [(r["tenant"], r["number"], r["note"]) for r in stored] == [
            ("tischlerei-test", CALLER, "Angebot Dachfenster")
        ]
        assert stored[0]["popped_at"] is not None
        assert stored[0]["call_id"]
        # another business's assistant does not see it
        assert http(switch.url + "/api/v1/reminders", tokens["susi"])["reminders"] == []
        await item.get_by_role("button", name="Erledigt").click()
        await (
            page.locator("#no-reminders")
            .filter(has_text="Kein Rückruf")
            .wait_for(state="visible", timeout=5000)
        )
        assert errors == []
    assert http(switch.url + "/api/v1/reminders", tokens["anna"])["reminders"] == []
