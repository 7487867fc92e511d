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

from tests.helpers.desk import http, users_with_tokens
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp
from tests.helpers.web import CHROMIUM, chromium_page

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(100),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
DOCS = Path(__file__).resolve().parents[3] / "docs"
CALLER = "+4917155501234"


def plans_dir(tmp_path: Path, phone: str) -> Path:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "test.yaml").write_text(
        "tenant: tischlerei-test\nname: Tischlerei Test\n"
        'greeting: "Tischlerei Test, Sekretariat, guten Tag"\nnumbers: ["+49 30 1234560"]\n'
        f'people: {{jan: {{name: Jan, devices: {{desk: "sip:jan@{LOOPBACK}:9"}}}}}}\n'
        f'service: {{heimbuero: {{name: Heimbüro, devices: {{anna: "sip:anna@{phone}"}}}}}}\n'
        "rules: [{name: the service, then: [{ring: [heimbuero.anna], timeout: 10s}]}]\n",
        encoding="utf-8",
    )
    (plans / "other.yaml").write_text(
        "tenant: elektro-test\nname: Elektro Test\nnumbers: ['+49 30 5550000']\n"
        "people: {sven: {name: Sven, devices: {desk: 'sip:sven@127.0.0.1:9'}}}\n"
        "rules: [{name: sven, then: [{ring: sven.desk}]}]\n",
        encoding="utf-8",
    )
    return plans


async def test_call_back_later_is_listed_and_pops_when_due(
    tmp_path: Path, make_switch: Any
) -> None:
    her_phone = Sipp(tmp_path, "anna", "uas_ring_answer.xml", ["-m", "1", "-timeout", "30"])
    data = tmp_path / "var"
    data.mkdir()
    tokens = users_with_tokens(data / "users.yaml")
    switch = make_switch(plans_dir(tmp_path, her_phone.address))
    call = Sipp(
        tmp_path,
        "caller",
        "uac_call.xml",
        [
            *(f"{LOOPBACK}:{switch.sip_port}", "-s", "+49301234560"),
            *("-key", "caller", CALLER, "-m", "1", "-d", "1000", "-timeout", "30"),
        ],
    )
    headers = {"Authorization": f"Bearer {tokens['anna']}"}
    async with chromium_page(1200, 1000, extra_http_headers=headers) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(switch.url + "/console")
        await page.locator("#status", has_text="live").wait_for(timeout=10_000)
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
