"""End to end (issue 17) in Chromium against ``rufweiche run``: "Zurückrufen" on the
assistant's console places a click to call for that business (``POST /api/v1/calls/dial``,
the same permission check as her dialling). A reminder to call back a 0900 number is
refused on the page with the German reason and nothing reaches the trunk; the one with a
national number rings her own phone (a SIPp that answers) first, then the trunk (a SIPp
UAS) gets the INVITE showing the business's number, and the day's log says so. When her
phone declines, or the customer is busy, the line under "Zurückrufen" says so in German
instead of going on saying that her phone rings (the call's ``call`` events)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.desk import console_page, http, service_plan, switch_users, write_plans
from tests.helpers.processes import running
from tests.helpers.sipp import BUSINESS_E164, Sipp, target
from tests.helpers.web import CHROMIUM

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(100),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
OUTBOUND = "outbound: {allow: [national]}\n"
SHOWN = """(node) => {
  node.shown = [];
  new MutationObserver((records) => {
    for (const r of records) for (const added of r.addedNodes) node.shown.push(added.textContent);
  }).observe(node, {childList: true});
}"""


@contextlib.contextmanager
def callback_world(
    tmp_path: Path, make_switch: Any, her_scenario: str, trunk_scenario: str
) -> Iterator[tuple[Any, dict[str, str], Sipp, Sipp]]:
    """Her phone and the trunk (SIPp), the users with their tokens, and the switch whose
    outbound calls go to that trunk: (switch, tokens, her phone, trunk)."""
    her_phone = target(tmp_path, "anna", her_scenario, timeout=40)
    trunk = Sipp(tmp_path, "trunk", trunk_scenario, ["-m", "1", "-timeout", "40"])
    tokens = switch_users(tmp_path)
    settings = tmp_path / "settings.yaml"
    with running(her_phone.start(), trunk.start()):
        trunk.wait_bound()
        settings.write_text(json.dumps({"trunk": trunk.address}), encoding="utf-8")
        plans = write_plans(tmp_path, service_plan(her_phone.address, head=OUTBOUND))
        yield make_switch(plans, "--settings", str(settings), bare=True), tokens, her_phone, trunk


async def test_call_back_from_the_console(tmp_path: Path, make_switch: Any) -> None:
    world = callback_world(tmp_path, make_switch, "uas_answer.xml", "uas_answer_bye.xml")
    with world as (switch, tokens, her_phone, trunk):
        reminders = f"{switch.url}/api/v1/reminders"
        for number, note in (("0900 1234567", "Hotline"), ("030 5551234", "Angebot")):
            body = {"tenant": "tischlerei-test", "in_minutes": 60, "note": note, "number": number}
            http(reminders, tokens["anna"], "POST", body)
        async with console_page(switch.url, tokens["anna"]) as (page, errors):
            premium = page.locator("#reminder-list li", has_text="Hotline")
            await premium.get_by_role("button", name="Zurückrufen").click()
            refused = premium.locator(".call-back-result.refused")
            await refused.wait_for(timeout=10_000)
            text = await refused.inner_text()
            assert text.startswith("Anruf nicht möglich: Premium-Nummern"), text
            assert "gesperrt" in text
            assert trunk.received("INVITE") == []
            offer = page.locator("#reminder-list li", has_text="Angebot")
            # every text the line shows, in order (each lasts as long as the call's phase)
            await offer.locator(".call-back-result").evaluate(SHOWN)
            await offer.get_by_role("button", name="Zurückrufen").click()
            await page.locator("#day-log li", has_text="Rückruf an 030 5551234").wait_for(
                timeout=10_000
            )
            assert await asyncio.to_thread(trunk.wait, 30) == 0, trunk.diagnostics()
            assert await asyncio.to_thread(her_phone.wait, 20) == 0, her_phone.diagnostics()
            # the customer hung up (the trunk's BYE): the line says the call is over
            await offer.locator(".call-back-result", has_text="Gespräch beendet").wait_for(
                timeout=10_000
            )
            shown = await offer.locator(".call-back-result").evaluate("(n) => n.shown")
            assert shown == [
                "Ihr Telefon klingelt, dann wird der Kunde angerufen",
                "Verbunden mit dem Kunden",
                "Gespräch beendet",
            ], shown
            assert await offer.locator(".call-back-result.refused").count() == 0
            assert errors == []
    (invite,) = trunk.received("INVITE")
    assert invite.startswith("INVITE sip:+49305551234@"), invite
    assert re.search(rf"^P-Asserted-Identity: <sip:{re.escape(BUSINESS_E164)}@", invite, re.M)
    assert "INVITE sip:" in her_phone.message_text()  # her phone rang first
    calls = http(f"{switch.url}/api/v1/calls", tokens["otto"])["calls"]
    assert any(c["direction"] == "outbound" and c["called"] == "+49305551234" for c in calls)


@pytest.mark.parametrize(
    ("her_scenario", "trunk_scenario", "expected"),
    [
        ("uas_busy.xml", None, "Abgelehnt: Ihr Telefon ist besetzt"),
        ("uas_answer.xml", "uas_busy.xml", "Besetzt: der Kunde telefoniert gerade"),
    ],
    ids=["her-phone-declines", "the-customer-is-busy"],
)
async def test_the_console_shows_why_a_call_back_failed(
    tmp_path: Path,
    make_switch: Any,
    her_scenario: str,
    trunk_scenario: str | None,
    expected: str,
) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    world = callback_world(
        tmp_path, make_switch, her_scenario, trunk_scenario or "uas_answer_bye.xml"
    )
    with world as (switch, tokens, her_phone, trunk):
        body = {"tenant": "tischlerei-test", "in_minutes": 60, "note": "Angebot",
                "number": "030 5551234"}  # fmt: skip
        http(f"{switch.url}/api/v1/reminders", tokens["anna"], "POST", body)
        async with console_page(switch.url, tokens["anna"]) as (page, errors):
            offer = page.locator("#reminder-list li", has_text="Angebot")
            await offer.get_by_role("button", name="Zurückrufen").click()
            result = offer.locator(".call-back-result")
            try:
                await offer.locator(".call-back-result.refused", has_text=expected).wait_for(
                    timeout=20_000
                )
            except PlaywrightTimeout:
                pytest.fail(f"the line says {await result.inner_text()!r}, not {expected!r}")
            assert await result.inner_text() == expected
            call_id = await result.get_attribute("data-call")  # the 202's id
            assert (call_id or "").startswith("c2c-"), call_id
            assert await asyncio.to_thread(her_phone.wait, 20) == 0, her_phone.diagnostics()
            if trunk_scenario is None:
                assert trunk.received("INVITE") == []  # nothing went out for her "no"
            else:
                assert await asyncio.to_thread(trunk.wait, 20) == 0, trunk.diagnostics()
            assert errors == []
