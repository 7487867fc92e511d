"""End to end (issue 18): the owner's page in Chromium against ``rufweiche run``. "Calls to the
service now" (day/night, his own presence) changes where the next SIPp call rings and what
``explain`` says for that presence; his messages are listed and marked done; German and
English; an owner sees only his own business."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from switch import cli
from tests.helpers.desk import TO_SERVICE, http, service_plan, switch_users, write_plans
from tests.helpers.processes import DOCS, running
from tests.helpers.sipp import caller, target
from tests.helpers.web import chromium_page, needs_chromium

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(110),
    needs_chromium,
]


def plan_text(jan: str, service: str) -> str:
    first = """  - name: Jan first
    when: {presence: {jan: available}}
    then: [{ring: [jan.desk], timeout: 10s}]
"""
    return service_plan(service, jan=f'desk: "sip:jan@{jan}"', rules=first + TO_SERVICE)


async def test_day_night_switch_sends_the_next_call_to_the_service(
    tmp_path: Path, make_switch: Any
) -> None:
    jan = target(tmp_path, "jan", "uas_answer.xml")
    service = target(tmp_path, "service", "uas_answer.xml")
    plans = write_plans(tmp_path, plan_text(jan.address, service.address))
    plan = plans / "test.yaml"
    tokens = switch_users(tmp_path)
    switch = make_switch(plans)
    note = {"tenant": "tischlerei-test", "caller_name": "Frau Öztürk", "concern": "Rückruf"}
    taken = http(switch.url + "/api/v1/messages", tokens["anna"], "POST", note)
    headers = {"Authorization": f"Bearer {tokens['otto']}"}
    async with chromium_page(420, 900, extra_http_headers=headers) as page:  # a phone's width
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(switch.url + "/owner")
        state = page.locator("#override-state")
        await state.filter(has_text="Normalbetrieb").wait_for(timeout=10_000)
        assert await page.locator("h1").inner_text() == "Ihr Büro"
        item = page.locator("#items li", has_text="Frau Öztürk: Rückruf")
        await item.wait_for(timeout=5000)
        await page.get_by_role("button", name="Anrufe jetzt zum Sekretariat").click()
        await state.filter(has_text="gehen jetzt zum Sekretariat").wait_for(timeout=5000)
        call = caller(tmp_path, switch.sip_port, caller="+4917155501234", hold_ms=500)
        with running(jan.start(), service.start(), call.start()):
            assert await asyncio.to_thread(call.wait, 20) == 0
        assert service.received("INVITE"), "the service's phone did not ring"
        assert not jan.received("INVITE"), "Jan's phone rang although he switched to night"
        await item.get_by_role("button", name="Erledigt").click()
        await page.locator("#items li.done", has_text="Frau Öztürk").wait_for(timeout=5000)
        if os.environ.get("RUFWEICHE_DOCS_SCREENSHOT"):
            await page.screenshot(path=str(DOCS / "owner.png"))
        await page.get_by_role("button", name="Zurück zum Normalbetrieb").click()
        await state.filter(has_text="Normalbetrieb").wait_for(timeout=5000)
        await page.goto(switch.url + "/owner?lang=en")
        await state.filter(has_text="Normal: your calls ring you first.").wait_for(timeout=10_000)
        assert await page.get_by_role("button", name="Calls to the service now").count() == 1
        assert errors == []
    # a user's language from the users file: susi's console is English without ?lang=
    susi = {"Authorization": f"Bearer {tokens['susi']}"}
    async with chromium_page(800, 600, extra_http_headers=susi) as page:
        await page.goto(switch.url + "/console")
        await page.locator("#status", has_text="live").wait_for(timeout=10_000)
        assert await page.locator("h1").inner_text() == "Assistant's console"
        assert await page.locator("#m-tenant option").all_inner_texts() == ["Elektro Test"]
        # ... and an owner's page is not hers
        response = await page.goto(switch.url + "/owner")
        assert response is not None
        assert response.status == 403
    # an owner sees only his own: susi's note for elektro-test is not on otto's list
    other = {"tenant": "elektro-test", "concern": "Zählerschrank"}
    http(switch.url + "/api/v1/messages", tokens["susi"], "POST", other)
    assert [m["id"] for m in http(switch.url + "/api/v1/messages", tokens["otto"])["messages"]] == [
        taken["id"]
    ]
    # explain says the same for that presence
    runner = CliRunner()
    args = ["explain", str(plan), "--to", "+49 30 1234560", "--at", "2027-05-25 10:00"]
    day = runner.invoke(cli.main, args, env={"RUFWEICHE_LANG": ""})
    night = runner.invoke(cli.main, [*args, "--presence", "jan=away"], env={"RUFWEICHE_LANG": ""})
    assert "Regel: Jan first" in day.stdout
    assert "Regel: the service" in night.stdout
    assert "Anwesenheit: jan abwesend" in night.stdout
