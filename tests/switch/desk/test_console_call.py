"""End to end (issue 18): a SIPp call through ``rufweiche run`` pops a card on the assistant's
console in Chromium before she answers, with greeting, presence and history; a message
taken in the page reaches the owner's mail server (aiosmtpd, STARTTLS). German and English.

The figure: from the INVITE reaching her phone (SIPp's message trace, wall clock) to the
card in the page (a MutationObserver's ``Date.now()``), both on this machine's clock.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.desk import (
    console_page,
    http,
    service_plan,
    smtp_server,
    switch_users,
    write_plans,
)
from tests.helpers.processes import DOCS, running
from tests.helpers.sipp import Sipp, caller, target
from tests.helpers.web import needs_chromium

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(110),
    needs_chromium,
]
CALLER = "+4917155501234"
TRACE_TIME = re.compile(r"^-+ (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)", re.M)


def invite_wall_time(sipp: Sipp) -> float:
    """When the INVITE reached the phone: the timestamp SIPp's -trace_msg wrote above it."""
    text = sipp.messages.read_text(errors="replace")
    at = text.index("INVITE sip:")
    stamps = [m for m in TRACE_TIME.finditer(text) if m.start() < at]
    date, clock = stamps[-1].groups()
    return datetime.fromisoformat(f"{date}T{clock}").timestamp()  # local time, like Date.now()


async def test_card_pops_before_she_answers(tmp_path: Path, make_switch: Any) -> None:
    her_phone = target(tmp_path, "anna", "uas_ring_answer.xml", timeout=30)
    head = """owner_email: otto@tischlerei-test.example
greeting: "Tischlerei Test, Sekretariat, guten Tag"
instructions: |
  **Angebote** nur schriftlich.
  - Notfälle: Jan mobil
  <script>alert(1)</script>
"""
    plans = write_plans(tmp_path, service_plan(her_phone.address, head=head))
    tokens = switch_users(tmp_path)
    with smtp_server(tmp_path) as sink:
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"smtp: {{host: 127.0.0.1, port: {sink.server.port}, starttls: true, "
            f"cafile: {sink.server.cafile}}}\n"
        )
        switch = make_switch(
            plans, "--settings", str(settings), bare=True
        )  # SIPp talks to the worker
        base = switch.url
        presence = f"{base}/api/v1/tenants/tischlerei-test/people/jan/presence"
        berlin = ZoneInfo("Europe/Berlin")  # the plan's time zone: the card shows its wall time
        until = (datetime.now(berlin) + timedelta(hours=2)).replace(second=0, microsecond=0)
        away = {"state": "away", "note": "auf der Baustelle", "until": until.isoformat()}
        http(presence, tokens["otto"], "PUT", away)
        # an earlier message from this caller: the card shows it as a note
        earlier = {"tenant": "tischlerei-test", "number": CALLER, "concern": "Angebot Küche"}
        http(base + "/api/v1/messages", tokens["anna"], "POST", earlier)
        # through the edge: ACK and BYE along the route set
        call = caller(
            tmp_path, switch.sip_port, "uac_via_edge.xml", caller=CALLER, hold_ms=1000, timeout=30
        )
        async with console_page(base, tokens["anna"]) as (page, errors):
            assert errors == []
            assert await page.locator("h1").inner_text() == "Telefonzentrale"
            await page.evaluate(
                """() => { window.__cardAt = null;
                new MutationObserver(() => { if (!window.__cardAt &&
                  document.querySelector('#cards .card')) window.__cardAt = Date.now(); })
                .observe(document.getElementById('cards'), {childList: true}); }"""
            )
            with running(her_phone.start(), call.start()):
                card = page.locator("#cards .card")
                await card.wait_for(timeout=10_000)
                card_at = await page.evaluate("window.__cardAt") / 1000.0
                answered_before = "200 OK" in her_phone.message_text().split("INVITE sip:", 1)[-1]
                text = await card.inner_text()
                assert await asyncio.to_thread(call.wait, 30) == 0
            invite_at = invite_wall_time(her_phone)
            delay_ms = (card_at - invite_at) * 1000
            print(f"\nINVITE at her phone -> card visible: {delay_ms:.0f} ms")
            assert not answered_before, "the card came after she answered"
            assert -50 < delay_ms < 500, delay_ms
            assert "Tischlerei Test, Sekretariat, guten Tag" in text
            assert f"Jan: abwesend (auf der Baustelle) bis {until:%H:%M}" in text
            assert "Angebot Küche" in text  # the caller's earlier note
            assert "Angebote" in await card.locator(".instructions strong").inner_text()
            assert await page.locator(".instructions script").count() == 0
            assert "<script>alert(1)</script>" in await card.locator(".instructions").inner_text()
            # put through once the call is over: the switch holds it no more (the
            # transfer itself: tests/switch/desk/test_console_putthrough.py)
            with pytest.raises(urllib.error.HTTPError) as refused:
                http(f"{base}/api/v1/calls/x/transfer", tokens["anna"], "POST", {"target": "jan"})
            assert refused.value.code == 404
            # take a message from the card
            await card.get_by_role("button", name="Notiz aufnehmen").click()
            assert await page.locator("#m-number").input_value() == CALLER
            await page.fill("#m-name", "Herr Müßig")
            await page.fill("#m-concern", "Bitte zurückrufen wegen Türmaß")
            await page.check("#m-callback")
            await page.click("#m-send")
            await page.locator("#m-result", has_text="Notiz gesendet.").wait_for(timeout=5000)
            if os.environ.get("RUFWEICHE_DOCS_SCREENSHOT"):
                await page.evaluate("window.scrollTo(0, 0)")
                await page.screenshot(path=str(DOCS / "console.png"))
            await page.goto(base + "/console?lang=en")
            await page.locator("#status", has_text="live").wait_for(timeout=10_000)
            assert await page.locator("h1").inner_text() == "Assistant's console"
            assert await page.locator("#m-send").inner_text() == "Send to the owner"
            # the day's log: the call she answered
            logged = page.locator("#day-log li.answered-call")
            await logged.first.wait_for(timeout=5000)
            assert "Tischlerei Test: +4917155501234 — answered" in await logged.first.inner_text()
        deadline = time.monotonic() + 10
        while len(sink.inbox.envelopes) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # aiosmtpd's handler runs in its own thread
        # scoping: susi serves elektro-test only
        assert http(base + "/api/v1/messages", tokens["susi"])["messages"] == []
        mine = http(base + "/api/v1/messages", tokens["otto"])["messages"]
        assert [m["caller_name"] for m in mine][:1] == ["Herr Müßig"]
    assert sink.inbox.tls[-1] is True
    raw = sink.inbox.envelopes[-1].content
    assert isinstance(raw, bytes)
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == "Telefonnotiz für Tischlerei Test: Herr Müßig – Rückruf erbeten"
    assert "Anliegen:\r\nBitte zurückrufen wegen Türmaß" in mail.get_content()
