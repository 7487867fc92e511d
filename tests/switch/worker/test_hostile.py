"""Hostile input against a real worker, inside a private network namespace (``unshare -n``).

The RFC 4475 torture messages name foreign hosts, so the worker and the sender both run in
a namespace that holds only loopback: whatever the worker answers to a Via of 192.0.2.x
cannot leave. After the replay, and after an INVITE with a 4 KB Content-Type (which
aborted a bare pjsua2 process that answered inside onIncomingCall), the worker must still
answer an OPTIONS of ours.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import run_reporting, shared_dir
from tests.helpers.worker import write_plan

pytestmark = [
    pytest.mark.peer,
    pytest.mark.netns,
    pytest.mark.timeout(90),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root"),
]


def test_rfc4475_and_malformed_invite_leave_the_worker_alive(tmp_path: Path) -> None:
    if not (shared_dir() / "testdata" / "rfc4475" / "manifest.tsv").exists():
        pytest.skip(f"RFC 4475 torture messages not found: {shared_dir()}/testdata is missing")
    plan = write_plan(
        tmp_path / "plan.yaml",
        """
tenant: hostile
name: Hostile Test
numbers: ["+49 30 1234560"]
people:
  jan: {name: Jan, devices: {desk: "sip:201@127.0.0.1:9"}}
rules:
  - name: ring
    then:
      - {ring: [jan.desk], timeout: 2s}
""",
    )
    isolated = ("unshare", "-n", sys.executable, "-m", "tests.helpers.hostile", "hostile")
    result, _ = run_reporting([*isolated, str(tmp_path), str(plan), "+49301234560"], 75)
    assert result["files"] == 50
    assert result["dead_after"] is None, result["log_tail"]
    assert all(ping == "SIP/2.0 200 OK" for ping in result["pings"]), result
    assert result["after_rfc4475"] == "SIP/2.0 200 OK", result
    assert result["after_malformed"] == "SIP/2.0 200 OK", result
    assert result["alive"], result
    assert result["rc"] == 0, result["log_tail"]  # SIGTERM: clean exit, no abort
    assert "Assertion" not in result["log_tail"]
