"""The worker's life around calls: hold re-INVITEs, feature codes, SIGTERM with calls in flight."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.rawsip import sip_options
from tests.helpers.sipp import Sipp, caller, target, wait_all
from tests.helpers.worker import (
    WorkerProcess,
    callee_worker,
    completed_call,
    ended,
    start_call,
    write_plan,
)

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]


def test_hold_reinvite_on_caller_leg_keeps_the_call(tmp_path: Path) -> None:
    callee = target(tmp_path, "callee", "uas_answer.xml")
    worker = callee_worker(tmp_path, callee)
    call = caller(tmp_path, worker.port, "uac_hold.xml", "-d", "500")
    with completed_call(worker, call, callee):
        assert "HOLD 200" in call.log_lines()
        assert "GOT BYE" in callee.log_lines()  # the call lasted past the re-INVITE
        record = worker.wait_for(ended)["record"]
        assert record["hung_up_by"] == "caller"


def feature_plan(tmp_path: Path, phone_address: str) -> Path:
    return write_plan(
        tmp_path / "plan.yaml",
        """
tenant: feature-test
name: Feature Test
numbers: ["+49 30 1234560"]
people:
  jan: {name: Jan, devices: {desk: "sip:201@office"}}
rules:
  - name: ring
    then:
      - {ring: [jan.desk], timeout: 5s}
""",
    )


@contextmanager
def feature_call(
    tmp_path: Path, scenario: str, extension: str
) -> Iterator[tuple[WorkerProcess, Sipp]]:
    """A phone with ``extension`` dials ``*31``; inside: the worker and the phone, call over."""
    phone = Sipp(
        tmp_path,
        "phone",
        scenario,
        ["-s", "*31", "-key", "caller", extension, "-m", "1", "-timeout", "10", "-timeout_error"],
    )
    worker = WorkerProcess(
        tmp_path, [feature_plan(tmp_path, phone.address)], routes=[f"office={phone.address}"]
    )
    phone.cmd.insert(phone.cmd.index("-s"), f"{LOOPBACK}:{worker.port}")
    with running(worker, phone):
        worker.start()
        phone.start()
        wait_all(phone)
        yield worker, phone


def test_feature_code_from_known_device_sets_presence(tmp_path: Path) -> None:
    with feature_call(tmp_path, "uac_wait_bye.xml", "201") as (worker, phone):
        assert "GOT BYE" in phone.log_lines()  # answered, then hung up by the switch
        message = worker.wait_for(lambda m: m["op"] == "presence_set")
        assert message == {
            "op": "presence_set",
            "tenant": "feature-test",
            "person": "jan",
            "state": "away",
        }


def test_feature_code_from_unknown_device_gets_404(tmp_path: Path) -> None:
    with feature_call(tmp_path, "uac_final.xml", "999") as (worker, phone):
        assert "FINAL 404" in phone.log_lines()
        assert not [m for m in worker.messages if m["op"] == "presence_set"]


def test_sigterm_drains_new_calls_get_503_call_in_flight_finishes(tmp_path: Path) -> None:
    callee = target(tmp_path, "callee", "uas_answer.xml")
    worker = callee_worker(tmp_path, callee, grace=10)
    first = caller(tmp_path, worker.port, "uac_call.xml", "-d", "2500")
    late = caller(tmp_path, worker.port, "uac_final.xml", name="late", timeout=10)
    with running(callee, worker, first, late):
        start_call(worker, first, callee)
        worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "answered")
        assert worker.proc is not None
        os.kill(worker.proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        late.start()
        wait_all(late)
        assert "FINAL 503" in late.log_lines()
        assert worker.alive()  # still carrying the first call
        wait_all(first, callee)
        assert worker.proc.wait(5) == 0
        assert "Assertion" not in worker.log_text()


def test_sigterm_grace_over_hangs_up_and_exits(tmp_path: Path) -> None:
    callee = target(tmp_path, "callee", "uas_answer.xml")
    worker = callee_worker(tmp_path, callee, grace=1)
    call = caller(tmp_path, worker.port, "uac_wait_bye.xml")
    with running(callee, worker, call):
        start_call(worker, call, callee)
        worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "answered")
        assert worker.proc is not None
        started = time.monotonic()
        os.kill(worker.proc.pid, signal.SIGTERM)
        wait_all(call, callee)
        assert "GOT BYE" in call.log_lines()
        assert "GOT BYE" in callee.log_lines()
        assert worker.proc.wait(8) == 0
        assert time.monotonic() - started < 6
        record = worker.wait_for(ended)["record"]
        assert record["outcome"] == "aborted"
        assert sip_options(worker.port, timeout=0.3) is None  # the port is closed
