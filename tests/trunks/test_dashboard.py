"""The trunk's registration on the dashboard, and rtpengine's state on /healthz and /metrics,
against the running switch in its network namespace (issue 15).

Headless Chromium (Debian's /usr/bin/chromium through Playwright, PEERS.md §4) runs inside
the switch's namespace (``ip netns exec`` in a wrapper the test writes), where the
dashboard listens on 127.0.0.1 without login.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.helpers.web import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.trunks.conftest import World

pytestmark = [
    pytest.mark.peer,
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.timeout(90),
    needs_chromium,
]


def trunk_row(world: World, state: str) -> tuple[str, str]:
    """The dashboard's row of trunk sipgate once it shows ``state``: (text, screenshot)."""
    from playwright.sync_api import sync_playwright

    wrapper = world.tmp / "chromium-in-ns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {world.net.switch} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    shot = world.tmp / f"dashboard-{state}.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(wrapper), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"http://{world.http}/dashboard")
            row = page.locator(f'#trunks tr[data-trunk="sipgate"][data-state="{state}"]')
            row.wait_for(timeout=20_000)
            assert page.locator("#trunks-card").is_visible()
            cells = [c.inner_text() for c in row.locator("td").all()]
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return " | ".join(cells), str(shot)


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_a_registered_trunk_on_the_dashboard_and_rtpengine_on_health_and_metrics(
    world: World,
) -> None:
    world.start_provider()
    world.start_switch()
    world.wait(lambda: world.trunk().get("registered"), 30, "trunk registered")
    text, _ = trunk_row(world, "registered")
    name, registered, since, error = text.split(" | ")
    assert (name, registered, error) == ("sipgate", "yes", "—")
    assert re.search(r"\d{1,2}:\d{2}:\d{2}", since), since

    relay = world.health()["detail"]["media_relay"]
    assert relay["running"] is True
    assert isinstance(relay["pid"], int)
    assert relay["restarts"] == 0
    metrics = world.fetch("/metrics")
    assert metric(metrics, "rufweiche_media_relay_up") == 1.0
    assert metric(metrics, "rufweiche_media_relay_restarts_total") == 0.0
    # rtpengine dies: the switch starts it again, and says so.
    os.kill(relay["pid"], signal.SIGKILL)
    again = world.wait(
        lambda: (r := world.health()["detail"]["media_relay"])["restarts"] == 1
        and r["running"]
        and r,
        15,
        "rtpengine restarted",
    )
    assert again["pid"] != relay["pid"]
    assert metric(world.fetch("/metrics"), "rufweiche_media_relay_restarts_total") == 1.0
    assert metric(world.fetch("/metrics"), "rufweiche_media_relay_up") == 1.0


def test_a_failed_trunk_on_the_dashboard_with_its_last_error(world: World) -> None:
    world.start_provider()
    started = time.time()
    world.start_switch(password="falsch")
    world.wait(lambda: world.trunk().get("state") == "failed", 30, "trunk failed")
    text, _ = trunk_row(world, "failed")
    name, registered, _, error = text.split(" | ")
    assert (name, registered) == ("sipgate", "no (failed)")
    assert "registration at 100.64.0.1 failed" in error, error
    assert "wrong password" in error
    detail = world.trunk()
    assert detail["last_error_at"] >= started - 1
    assert "falsch" not in text
