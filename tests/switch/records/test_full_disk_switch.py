"""Issue 14, item 8, end to end: the whole switch on a full disk, 20 real SIPp calls.

``python -m switch run`` is started inside a private mount namespace (``unshare -m
--propagation private``) with its data directory on a 16 MiB tmpfs. Once it is ready,
the tmpfs is filled to the last byte from inside that namespace (``nsenter -m``), SIPp
places 20 answered calls through it, ``/healthz`` and ``/metrics`` must say "not
durable" with the backlog, then the filler is removed and all 20 calls must be in the
database (counted through the switch's own API). ``records.reserve_mb: 0``: the memory
path alone (the reserve is shown by test_full_disk.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp
from tests.helpers.switch import Switch

pytestmark = [
    pytest.mark.netns,  # a private mount namespace: needs root
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(90),
    pytest.mark.skipif(os.geteuid() != 0, reason="unshare -m and mount need root"),
    pytest.mark.skipif(
        shutil.which("unshare") is None or shutil.which("nsenter") is None,
        reason="util-linux unshare and nsenter are needed",
    ),
]

CALLS = 20
BUSINESS_E164 = "+49301234560"


def in_namespace(switch: Switch, script: str) -> None:
    assert switch.proc is not None
    subprocess.run(
        ["nsenter", "-t", str(switch.proc.pid), "-m", "sh", "-c", script],
        check=False,
        timeout=20,
        capture_output=True,
    )


def records(switch: Switch) -> dict[str, Any]:
    return dict(switch.health()["detail"]["records"])


def test_twenty_calls_on_a_full_disk_all_reach_the_database(tmp_path: Path) -> None:
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", str(CALLS), "-timeout", "40"])
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "test.yaml").write_text(
        f"""
tenant: test-tenant
name: Test
numbers: ["+49 30 1234560"]
people:
  jan:
    name: Jan
    devices: {{desk: "sip:desk@{desk.address}"}}
rules:
  - name: ring jan
    then:
      - {{ring: [jan.desk], timeout: 10s}}
""",
        encoding="utf-8",
    )
    settings = tmp_path / "settings.yaml"
    settings.write_text("records: {reserve_mb: 0}\n", encoding="utf-8")
    disk = tmp_path / "var"
    disk.mkdir()
    switch = Switch(tmp_path, plans, "--settings", str(settings), bare=True)  # SIP to the worker
    switch.cmd = [
        *("unshare", "-m", "--propagation", "private", "sh", "-c"),
        f"mount -t tmpfs -o size=16m tmpfs {disk} && exec {shlex.join(switch.cmd)}",
    ]
    try:
        switch.start()
        assert records(switch)["state"] == "durable"
        in_namespace(switch, f"cat /dev/zero > {disk}/filler")  # ENOSPC ends it
        caller = Sipp(
            tmp_path,
            "caller",
            "uac_call.xml",
            [
                f"{LOOPBACK}:{switch.sip_port}",
                *("-s", BUSINESS_E164, "-key", "caller", "+491715550100"),
                *("-m", str(CALLS), "-l", "1", "-r", "5", "-d", "100", "-timeout", "40"),
            ],
        )
        with running(desk.start(), caller.start()):
            assert caller.wait(40) == 0, caller.diagnostics()
        full = switch.wait_until(
            lambda: (r := records(switch))["backlog"] >= CALLS and r, 10, "records held"
        )
        assert full["state"] == "not durable"
        assert full["lost"] == 0
        metrics = switch.text("/metrics")
        assert "rufweiche_records_durable 0.0" in metrics
        assert f"rufweiche_records_backlog {float(full['backlog'])}" in metrics
        assert switch.calls() == [] or len(switch.calls()) < CALLS  # not in the database yet
        in_namespace(switch, f"rm -f {disk}/filler")
        after = switch.wait_until(
            lambda: (r := records(switch))["durable"] and not r["spool_pending"] and r,
            20,
            "records written",
        )
        assert after["lost"] == 0
        answered = [c for c in switch.calls() if c["outcome"] == "answered"]
        assert len(answered) == CALLS
        assert "rufweiche_records_durable 1.0" in switch.text("/metrics")
        print(f"held in memory while full: {full['backlog']} items; after: {len(answered)} rows")
    finally:
        if switch.proc is not None and switch.proc.poll() is None:
            switch.stop()
