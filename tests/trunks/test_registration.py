"""The switch registers its trunk at a provider (Kamailio uac) — in network namespaces.

Provider (100.64.0.1) and switch (100.64.0.2) live in namespaces of their own
(tests/trunks/netns.py); the provider asks for digest auth and a Min-Expires of 15 s.
"""

from __future__ import annotations

import re

import pytest

from tests.trunks.conftest import World

pytestmark = [pytest.mark.peer, pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(90)]


def metric(text: str, name: str) -> float | None:
    match = re.search(rf'^{name}\{{trunk="sipgate"\}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else None


def test_registers_with_auth_and_again_after_the_provider_restarts(world: World) -> None:
    provider = world.start_provider()
    world.start_switch()
    world.wait(lambda: world.trunk().get("registered"), 30, "trunk registered")
    text = provider.text()
    assert "REGISTERED 1234567t0 contact <sip:sipgate@100.64.0.2:5060" in text
    # 423 Interval Too Brief, then uac asks again with the Min-Expires of the answer.
    assert re.search(r"REGISTERED 1234567t0 .* expires 15", text), text[-2000:]
    metrics = world.fetch("/metrics")
    assert metric(metrics, "rufweiche_trunk_registered") == 1.0

    before = provider.count("REGISTERED 1234567t0")
    provider.restart()  # the provider forgets every binding
    world.wait(
        lambda: provider.count("REGISTERED 1234567t0") > before, 40, "REGISTER after restart"
    )
    assert world.trunk()["registered"] is True
    assert "geheim-42" not in world.output()  # the password is never logged


def test_a_wrong_password_is_reported_and_retried(world: World) -> None:
    provider = world.start_provider()
    world.start_switch(password="falsch")
    state = world.wait(
        lambda: (t := world.trunk()).get("state") == "failed" and t, 30, "trunk failed"
    )
    assert state["registered"] is False
    assert state["failures"] >= 1
    assert "trunk sipgate: registration at 100.64.0.1 failed" in world.output()
    metrics = world.fetch("/metrics")
    assert metric(metrics, "rufweiche_trunk_registered") == 0.0
    assert (metric(metrics, "rufweiche_trunk_registration_failures_total") or 0) >= 1
    # uac retries (reg_retry_interval 10 s): a second round of auth failures, no crash.
    first = provider.count("REGISTER auth FAILED")
    world.wait(lambda: provider.count("REGISTER auth FAILED") > first, 30, "a retry")
    assert world.proc is not None
    assert world.proc.poll() is None
    assert world.health()["detail"]["edge"]["running"] is True
    assert "falsch" not in world.output()
