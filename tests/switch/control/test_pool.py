"""A pool of workers behind the Kamailio edge, and dial plan reloads under load (real SIPp)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp, load
from tests.helpers.switch import Switch, plan_text

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(120)]


def trunk_settings(tmp_path: Path) -> str:
    """A settings file naming the SIPp callers' address as the trunk: no address is a
    trunk by default (issue 14 item 5), and an unnamed caller needs digest auth."""
    path = tmp_path / "settings.yaml"
    if not path.exists():
        path.write_text('edge: {trunk_sources: ["127.0.0.1/32"]}\n', encoding="utf-8")
    return str(path)


def test_pool_behind_the_edge_survives_a_killed_worker(tmp_path: Path, make_switch: Any) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", "200", "-timeout", "60"])
    (plans / "test.yaml").write_text(plan_text(f"sip:desk@{desk.address}", "pool"))
    switch = make_switch(plans, "--workers", "3", "--settings", trunk_settings(tmp_path))
    switch.wait_until(lambda: switch.health()["workers_up"] == 3, 15, "three workers")
    # 4 calls/s held 1 s: about 5 calls at once, more than two workers (2 calls each) hold.
    # 14 s of calls: the killed worker is back after ~2 s and the edge's OPTIONS probes
    # take it in again a few seconds later, with calls left for it to take.
    calls = load(tmp_path, switch.sip_port, 56, 4, 1000, "uac_via_edge.xml")
    with running(desk.start(), calls.start()):
        time.sleep(3)
        victim = switch.health()["detail"]["workers"]["w2"]
        os.kill(victim["pid"], signal.SIGKILL)
        killed, killed_wall = time.monotonic(), time.time()
        switch.wait_until(
            lambda: (w := switch.health()["detail"]["workers"]["w2"])["ready"]
            and w["pid"] != victim["pid"],
            5,
            "w2 back",
        )
        back_after = time.monotonic() - killed
        calls.wait(60)
    totals = calls.totals()
    records = switch.calls()
    aborted = [c for c in records if c["outcome"] == "aborted"]
    answered = [c for c in records if c["outcome"] == "answered"]
    busy = calls.received("SIP/2.0 503")
    # A call fails only when it was on the killed worker (at most its two bridged calls),
    # or, while that worker was down, when every other worker was full: the edge then
    # answers 503 itself. Nothing times out, nothing else fails.
    assert totals["ok"] + totals["failed"] == 56
    assert len(aborted) <= 2
    assert totals["failed"] == len(aborted) + len({m.split("Call-ID:")[1][:30] for m in busy})
    assert all("All workers busy" in m for m in busy)
    assert {c["worker"] for c in answered} == {"w1", "w2", "w3"}, "the load needs every worker"
    assert back_after < 5
    after_restart = [c for c in answered if c["worker"] == "w2" and c["started_wall"] > killed_wall]
    assert after_restart, "the restarted worker takes calls again"


def test_dial_plan_edit_during_load_loses_no_call(tmp_path: Path, make_switch: Any) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", "200", "-timeout", "60"])
    plan = plans / "test.yaml"
    plan.write_text(plan_text(f"sip:desk@{desk.address}", "before"))
    switch = make_switch(plans)
    calls = load(tmp_path, switch.sip_port, 24, 4, 100, "uac_call.xml")
    with running(desk.start(), calls.start()):
        time.sleep(2.5)
        tmp = plan.with_suffix(".tmp")
        tmp.write_text(plan_text(f"sip:desk@{desk.address}", "after"))
        os.replace(tmp, plan)
        calls.wait(60)
    totals = calls.totals()
    assert totals == {"ok": 24, "failed": 0}
    switch.wait_until(lambda: len(switch.calls()) == 24, 5, "24 records")
    rules = [c["rule"] for c in sorted(switch.calls(), key=lambda c: c["started_at"])]
    assert rules[0] == "before"
    assert rules[-1] == "after", "new calls follow the new plan"
    assert rules == sorted(rules, key=lambda r: r == "after"), "no call went back to the old plan"


def test_a_killed_supervisor_leaves_nothing_that_blocks_the_next_start(
    tmp_path: Path, make_switch: Any
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "test.yaml").write_text(plan_text(f"sip:desk@{LOOPBACK}:9", "pool"))
    first = make_switch(plans, "--workers", "2", "--settings", trunk_settings(tmp_path))
    assert first.proc is not None
    edge_pid = first.health()["detail"]["edge"]["pid"]
    os.kill(first.proc.pid, signal.SIGKILL)  # no chance to stop its edge or workers
    first.proc.wait(5)
    assert Path(f"/proc/{edge_pid}").exists(), "Kamailio outlives a SIGKILLed parent"

    second = Switch(tmp_path, plans, "--workers", "2", "--settings", trunk_settings(tmp_path))
    # The same addresses and data directory as the killed one.
    second.sip_port, second.http_port, second.url = first.sip_port, first.http_port, first.url
    second.cmd = first.cmd
    second.start()
    try:
        assert second.health()["detail"]["edge"]["running"]
        assert not Path(f"/proc/{edge_pid}").exists(), "the orphaned edge was stopped"
        second.wait_until(lambda: second.health()["workers_up"] == 2, 10, "both workers")
    finally:
        second.stop()
