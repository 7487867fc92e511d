"""End to end (issue 18): "put through" on the assistant's console moves a real call.

Chromium shows the card of a SIPp call ringing the assistant's SIPp phone; while it rings,
put through is refused (409: not bridged); once she answered, she picks Jan's mobile (a
third SIPp) on the card and clicks: the switch runs the blind transfer (the same one a
REFER starts), Jan's phone rings and answers, her phone gets its BYE, and the record says
``transferred_by`` her device and ``answered_by`` Jan's.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.desk import console_page, http, service_plan, switch_users, write_plans
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.sipp import caller, target
from tests.helpers.web import needs_chromium

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(90),
    needs_chromium,
]
CALLER = "+4917155501234"


def post_status(url: str, token: str, body: Any) -> int:
    try:
        http(url, token, "POST", body)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


async def test_put_through_moves_the_call_to_jan(tmp_path: Path, make_switch: Any) -> None:
    her_phone = target(tmp_path, "anna", "uas_ring_answer.xml", timeout=40)
    jan_phone = target(tmp_path, "jan", "uas_answer.xml", timeout=40)
    jan = f'desk: "sip:jan@{LOOPBACK}:9", mobile: "sip:jan@{jan_phone.address}"'
    plans = write_plans(tmp_path, service_plan(her_phone.address, jan=jan))
    tokens = switch_users(tmp_path)
    switch = make_switch(plans, bare=True)  # SIPp talks to the worker
    base = switch.url
    assert (
        post_status(f"{base}/api/v1/calls/nope/transfer", tokens["anna"], {"target": "jan"}) == 404
    )
    call = caller(
        tmp_path, switch.sip_port, "uac_via_edge.xml", caller=CALLER, hold_ms=9000, timeout=40
    )
    async with console_page(base, tokens["anna"]) as (page, errors):
        with running(her_phone.start(), jan_phone.start(), call.start()):
            card = page.locator("#cards .card")
            await card.wait_for(timeout=10_000)
            call_id = await card.get_attribute("data-call")
            assert call_id
            url = f"{base}/api/v1/calls/{call_id}/transfer"
            # still ringing at her phone (it rings 3 s): nothing to put through yet
            assert post_status(url, tokens["anna"], {"target": "jan.mobile"}) == 409
            # another business's assistant does not even learn that the call exists
            assert post_status(url, tokens["susi"], {"target": "jan.mobile"}) == 404
            assert post_status(url, tokens["anna"], {}) == 400
            # the card lists Jan's devices; she picks the mobile once she answered
            options = await card.locator("select.put-target option").all_inner_texts()
            assert any("Jan · mobile" in o for o in options), options
            await page.locator("#cards .card.answered").wait_for(timeout=10_000)
            await card.locator("select.put-target").select_option("jan.mobile")
            await card.get_by_role("button", name="Durchstellen").click()
            await card.locator("button.put-through", has_text="jan.mobile").wait_for(timeout=5000)
            assert "wird zu jan.mobile durchgestellt" in await card.inner_text()
            assert await asyncio.to_thread(her_phone.wait, 20) == 0, her_phone.diagnostics()
            assert await asyncio.to_thread(call.wait, 30) == 0, call.diagnostics()
            assert await asyncio.to_thread(jan_phone.wait, 20) == 0, jan_phone.diagnostics()
        assert errors == []
    jan_trace = jan_phone.message_text()
    assert "INVITE sip:" in jan_trace
    assert "BYE sip:" in jan_trace
    assert "BYE sip:" in her_phone.message_text()  # the switch let her go
    deadline = time.monotonic() + 10
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:  # the ended report reaches the records
        calls = http(f"{base}/api/v1/calls", tokens["otto"])["calls"]
        record = next((c for c in calls if c["call_id"] == call_id), {})
        if record.get("outcome"):
            break
        await asyncio.sleep(0.2)
    assert record.get("transferred_by") == "heimbuero.anna", record
    assert record.get("answered_by") == "jan.mobile", record
    assert record.get("transferred_to") == "jan.mobile"
    assert record.get("transfer_outcome") == "answered"
