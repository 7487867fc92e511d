"""End to end (issue 18) in Chromium against ``rufweiche run``: the owner's page sets and
clears his call forwarding (0900 refused), and shows the week view of his plan with today
marked; the week view is his own business only."""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.desk import http, service_plan, switch_users, write_plans
from tests.helpers.processes import DOCS
from tests.helpers.web import chromium_page, needs_chromium

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(90),
    needs_chromium,
]
PLAN = service_plan(
    "127.0.0.1:9",
    jan='desk: "sip:jan@127.0.0.1:9"',
    head='schedules: {office_hours: {mon-fri: "08:00-17:00"}}\n',
    rules="""  - name: office hours
    when: {schedule: office_hours}
    then: [{ring: [jan.desk], timeout: 10s}, {ring: [heimbuero.anna], timeout: 10s}]
  - {name: night, then: voicemail}
""",
)
FORWARD = "/api/v1/tenants/tischlerei-test/people/jan/forwarding"


async def test_owner_sets_forwarding_and_sees_this_week(tmp_path: Path, make_switch: Any) -> None:
    plans = write_plans(tmp_path, PLAN)
    tokens = switch_users(tmp_path)
    switch = make_switch(plans)
    headers = {"Authorization": f"Bearer {tokens['otto']}"}
    async with chromium_page(420, 1100, extra_http_headers=headers) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(switch.url + "/owner")
        state = page.locator("#forward-state")
        await state.filter(has_text="Keine Umleitung").wait_for(timeout=10_000)
        await page.fill("#forward-number", "0900 1234567")
        await page.get_by_role("button", name="Umleiten", exact=True).click()
        await page.locator("#forward-result", has_text="premium").wait_for(timeout=5000)
        assert "Keine Umleitung" in await state.inner_text()
        await page.fill("#forward-number", "0170 1234567")
        await page.get_by_role("button", name="Umleiten", exact=True).click()
        await state.filter(has_text="+491701234567").wait_for(timeout=5000)
        assert http(switch.url + FORWARD, tokens["otto"])["number"] == "+491701234567"
        # the week of his plan, today framed and labelled
        today = page.locator("#week-svg svg rect.today")
        await today.wait_for(state="attached", timeout=5000)
        label = page.locator("#week-svg svg text.today-label")
        assert await label.inner_html() == "heute"
        assert await page.locator("#week-svg svg rect.slot").count() == 7 * 24
        rules = set(await page.locator("#week-svg svg rect.slot").evaluate_all(
            "els => els.map(e => e.getAttribute('data-rule'))"))  # fmt: skip
        assert rules == {"office hours", "night"}
        if os.environ.get("RUFWEICHE_DOCS_SCREENSHOT"):
            await page.screenshot(path=str(DOCS / "owner.png"))
        await page.get_by_role("button", name="Umleitung aufheben").click()
        await state.filter(has_text="Keine Umleitung").wait_for(timeout=5000)
        assert errors == []
    assert http(switch.url + FORWARD, tokens["otto"])["number"] is None
    # the SVG itself: today's row is the right one, other weeks have none, scope is his own
    zone = ZoneInfo("Europe/Berlin")
    today_date = dt.datetime.now(zone).date()
    svg = fetch(switch.url + "/api/v1/week.svg?tenant=tischlerei-test", tokens["otto"])
    assert svg.count('class="today"') == 1
    next_year = f"{today_date.year + 1}-W10"
    other_week = fetch(switch.url + f"/api/v1/week.svg?tenant=tischlerei-test&week={next_year}",
                       tokens["otto"])  # fmt: skip
    assert 'class="today"' not in other_week
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch(switch.url + "/api/v1/week.svg?tenant=elektro-test", tokens["otto"])
    assert refused.value.code == 404
    request = urllib.request.Request(
        switch.url + "/api/v1/tenants/elektro-test/people/sven/forwarding",
        data=json.dumps({"number": "0301234567"}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {tokens['otto']}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as other:
        open_url(request)
    assert other.value.code == 404


def open_url(request: urllib.request.Request) -> None:
    urllib.request.urlopen(request, timeout=5).close()


def fetch(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("image/svg+xml")
        return str(response.read().decode())
