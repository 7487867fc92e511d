"""``rufweiche run`` as a whole: supervisor + worker + records + HTTP, against SIPp peers.

Each test starts the real command in a subprocess on free loopback ports with its own
data directory, places calls with SIPp and reads what the switch shows over HTTP.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import sipp
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import REPO, running
from tests.helpers.sipp import Sipp
from tests.helpers.switch import Switch, plan_text, write

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


def target(tmp_path: Path, name: str, scenario: str = "uas_answer.xml") -> Sipp:
    return Sipp(tmp_path, name, scenario, calls=1, timeout=30)


def caller(tmp_path: Path, switch: Switch, hold_ms: int = 200, name: str = "caller") -> Sipp:
    return sipp.caller(
        tmp_path, switch.sip_port, name=name, timeout=30, hold_ms=hold_ms, timeout_error=False
    )


def test_call_is_forwarded_recorded_and_counted(
    tmp_path: Path, plans: Path, make_switch: Any
) -> None:
    desk = target(tmp_path, "desk")
    write(plans / "test.yaml", plan_text(f"sip:desk@{desk.address}"))
    switch = make_switch(plans)
    call = caller(tmp_path, switch)
    with running(desk.start(), call.start()):
        assert call.wait(20) == 0, call.diagnostics()
        record = switch.wait_until(
            lambda: [c for c in switch.calls() if c["outcome"] == "answered"], 10, "record"
        )[0]
    assert record["tenant"] == "test-tenant"
    assert record["answered_by"] == "jan.desk"
    assert record["rule"] == "ring jan"
    assert record["hung_up_by"] == "caller"
    metrics = switch.text("/metrics")
    assert 'rufweiche_calls_total{outcome="answered",tenant="test-tenant"} 1.0' in metrics
    assert 'rufweiche_added_delay_seconds_count{hop="invite"} 1.0' in metrics

    # The usage report the service bills from, on the records of this real call.
    month = datetime.now(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")
    report = subprocess.run(
        [
            *(sys.executable, "-m", "switch", "report", "--month", month, "--format", "csv"),
            *("--db", str(tmp_path / "var" / "calls.sqlite3")),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(report.stdout.splitlines()))
    assert rows[0]["business"] == "test-tenant"
    assert (rows[0]["received"], rows[0]["answered_owner"], rows[0]["missed"]) == ("1", "1", "0")


def test_hot_reload_keeps_the_last_good_plan_and_takes_a_fixed_one(
    tmp_path: Path, plans: Path, make_switch: Any
) -> None:
    first = target(tmp_path, "first")
    second = target(tmp_path, "second")
    plan = write(plans / "test.yaml", plan_text(f"sip:first@{first.address}", "old rule"))
    switch = make_switch(plans)

    write(plan, plan_text(f"sip:second@{second.address}", "new rule").replace("timeout", "timout"))
    problems = switch.wait_until(
        lambda: switch.health()["detail"]["dial_plans"]["problems"], 10, "reload problems"
    )
    assert any("test.yaml:" in p and "did you mean 'timeout'" in p for p in problems), problems
    assert switch.health()["ready"]
    call = caller(tmp_path, switch, name="caller1")
    with running(first.start(), call.start()):
        assert call.wait(20) == 0, call.diagnostics() + first.diagnostics()
    assert first.received("INVITE"), "the broken edit must leave the old plan in force"

    write(plan, plan_text(f"sip:second@{second.address}", "new rule"))
    switch.wait_until(
        lambda: switch.health()["detail"]["dial_plans"]["ok"], 10, "reload of the fixed plan"
    )
    time.sleep(0.5)  # the worker reloads right after the supervisor
    call = caller(tmp_path, switch, name="caller2")
    with running(second.start(), call.start()):
        assert call.wait(20) == 0, call.diagnostics() + switch.output()
    assert second.received("INVITE")
    rules = {c["rule"] for c in switch.calls() if c["outcome"] == "answered"}
    assert rules == {"old rule", "new rule"}


def test_killed_worker_is_restarted_and_its_call_closed_as_aborted(
    tmp_path: Path, plans: Path, make_switch: Any
) -> None:
    desk = target(tmp_path, "desk")
    write(plans / "test.yaml", plan_text(f"sip:desk@{desk.address}"))
    switch = make_switch(plans)
    call = caller(tmp_path, switch, hold_ms=20_000)
    with running(desk.start(), call.start()):
        switch.wait_until(
            lambda: [c for c in switch.calls() if c["outcome"] is None and c["answer_in_ms"]],
            10,
            "the call to be up",
        )
        before = switch.worker()
        killed_at = time.monotonic()
        os.kill(before["pid"], signal.SIGKILL)
        after = switch.wait_until(
            lambda: (w := switch.worker())["ready"] and w["pid"] != before["pid"] and w,
            5,
            "the worker to be back",
        )
        restart_seconds = time.monotonic() - killed_at
    assert after["restarts"] == 1
    assert restart_seconds < 5
    record = switch.wait_until(
        lambda: [c for c in switch.calls() if c["outcome"] == "aborted"], 5, "aborted record"
    )[0]
    assert record["tenant"] == "test-tenant"
    assert switch.health()["ready"]


def test_feature_code_from_own_phone_sets_presence(
    tmp_path: Path, plans: Path, make_switch: Any
) -> None:
    phone_port = free_port()
    write(plans / "test.yaml", plan_text(f"sip:jan@{LOOPBACK}:{phone_port}"))
    switch = make_switch(plans)
    assert switch.get("/api/v1/tenants/test-tenant/people/jan/presence")["state"] == "available"
    dial = Sipp(
        tmp_path,
        "phone",
        "uac_wait_bye.xml",
        [f"{LOOPBACK}:{switch.sip_port}", "-s", "*31", "-m", "1", "-timeout", "15"],
        port=phone_port,
    )
    dial.cmd += ["-key", "caller", "jan"]
    with running(dial.start()):
        dial.wait(15)
    person = switch.wait_until(
        lambda: (p := switch.get("/api/v1/tenants/test-tenant/people/jan/presence"))["state"]
        == "away"
        and p,
        5,
        "jan away",
    )
    assert person["source"] == "phone"


def test_broken_plan_at_start_is_reported_and_sigterm_stops_cleanly(
    tmp_path: Path, plans: Path
) -> None:
    write(plans / "bad.yaml", plan_text("sip:x@127.0.0.1:9").replace("tenant:", "tennant:"))
    broken = Switch(tmp_path, plans)
    result = subprocess.run(broken.cmd, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "bad.yaml:2:1:" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr

    write(plans / "bad.yaml", plan_text("sip:x@127.0.0.1:9"))
    switch = Switch(tmp_path, plans).start()
    assert switch.proc is not None
    switch.proc.send_signal(signal.SIGTERM)
    assert switch.proc.wait(20) == 0
    assert "Traceback" not in switch.output()
