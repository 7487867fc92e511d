"""Final responses the caller gets, and the supervisor's control messages, against a real worker."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.helpers.processes import running
from tests.helpers.sipp import Sipp, caller, target, wait_all
from tests.helpers.worker import (
    WorkerProcess,
    completed_call,
    ended,
    plan,
    ring_worker,
    write_plan,
)

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]


def final_caller(tmp_path: Path, worker: WorkerProcess, name: str = "caller") -> Sipp:
    return caller(tmp_path, worker.port, "uac_final.xml", name=name, timeout=15, hold_ms=200)


def test_reject_rule_answers_with_the_plans_status(tmp_path: Path) -> None:
    dialplan = plan(tmp_path, "      - {reject: 603}", {"desk": "127.0.0.1:9"})
    worker = WorkerProcess(tmp_path, [dialplan])
    call = final_caller(tmp_path, worker)
    with completed_call(worker, call):
        assert "FINAL 603" in call.log_lines()
        record = worker.wait_for(ended)["record"]
        assert record["outcome"] == "rejected"
        assert record["sip_status"] == 603


def test_no_target_answers_caller_gets_480_with_reason(tmp_path: Path) -> None:
    busy = target(tmp_path, "busy", "uas_busy.xml")
    worker = ring_worker(tmp_path, "      - {ring: [jan.busy], timeout: 5s}", busy)
    call = final_caller(tmp_path, worker)
    with completed_call(worker, call, busy):
        assert "FINAL 480" in call.log_lines()
        response = call.received("SIP/2.0 480")[0]
        assert re.search(r"^Reason: SIP;cause=480;text=\"", response, re.MULTILINE), response
        record = worker.wait_for(ended)["record"]
        assert record["outcome"] == "missed"
        assert record["legs"][0]["status"] == 486


def test_presence_message_changes_the_route_and_reload_swaps_plans(tmp_path: Path) -> None:
    desk = target(tmp_path, "desk", "uas_answer.xml")
    service = target(tmp_path, "service", "uas_answer.xml")
    dialplan = write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: presence-test
name: Presence Test
numbers: ["+49 30 1234560"]
people:
  jan: {{name: Jan, devices: {{desk: "sip:desk@{desk.address}"}}}}
service:
  heimbuero: {{name: Heimbüro, devices: {{assistant: "sip:assistant@{service.address}"}}}}
rules:
  - name: jan when available
    when: {{presence: {{jan: available}}}}
    then:
      - {{ring: [jan.desk], timeout: 5s}}
  - name: otherwise the service
    then:
      - {{ring: [heimbuero.assistant], timeout: 5s}}
""",
    )
    worker = WorkerProcess(tmp_path, [dialplan])
    call = final_caller(tmp_path, worker)
    with running(desk, service, worker, call):
        for peer in (desk, service):
            peer.start()
            peer.wait_bound()
        worker.start()
        worker.send({"op": "presence", "tenant": "presence-test", "states": {"jan": "dnd"}})
        # The worker reads control messages between polls (at most 100 ms apart).
        legs = worker.wait_for(lambda m: m["op"] == "legs")
        assert legs["capacity"] == 4
        time.sleep(0.3)
        call.start()
        wait_all(call, service)
        record = worker.wait_for(ended)["record"]
        assert record["rule"] == "otherwise the service"
        assert record["answered_by"] == "heimbuero.assistant"
        desk.stop()

        broken = write_plan(tmp_path / "broken.yaml", "tenant: [not, a, name]\n")
        worker.send({"op": "reload", "paths": [str(broken)]})
        failed = worker.wait_for(lambda m: m["op"] == "reload_failed")
        assert failed["problems"]
        assert "broken.yaml" in failed["problems"][0]
        worker.send({"op": "reload", "paths": [str(dialplan)]})
        assert worker.wait_for(lambda m: m["op"] == "reloaded")["tenants"] == 1
