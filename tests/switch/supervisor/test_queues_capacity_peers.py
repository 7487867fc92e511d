"""Queues against real peers (issue 19): capacity, reload and crash. A waiting caller holds
worker legs, so the edge refuses when the workers are full; a dial-plan reload keeps every
caller's place; a worker crash loses only the callers it held. Builders: tests/helpers/queues.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.mosquitto import MosquittoBroker
from tests.helpers.processes import running
from tests.helpers.queues import (
    members_yaml,
    mqtt_member,
    queue_callers,
    refusal_callers,
    refuse_the_next,
    settings,
    start,
    wait_member,
    waiting_ids,
)
from tests.helpers.sipp import target

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(110)]


def test_waiting_callers_fill_a_worker_and_the_next_caller_gets_503(tmp_path: Path) -> None:
    # One worker: two waiting callers hold its four legs (caller + one reserved each).
    anna = target(tmp_path, "anna", "uas_member.xml", calls=1, timeout=30)
    members = members_yaml(("anna", anna, ", logged_in: false"))
    broker = MosquittoBroker(tmp_path)
    broker.start()
    try:
        switch = start(
            tmp_path, settings(tmp_path, members, workers=1), workers=1, mqtt=broker.address
        )
    except BaseException:
        broker.stop()
        raise
    waiting, sinks, extra = refusal_callers(tmp_path, switch, "04", 6000)
    try:
        with running(broker, switch, anna, *waiting, extra):
            # anna logs in over MQTT (the trunk's callers of this test could not dial *45)
            mqtt_member(broker, "anna", "login")
            wait_member(switch, "anna", "available", "anna logged in over MQTT")
            queues = refuse_the_next(switch, waiting, extra)
            # Over MQTT: anna logs out; her status is published, retained.
            mqtt_member(broker, "anna", "logout")
            wait_member(switch, "anna", "logged_out", "anna logged out over MQTT")
            retained = subprocess.run(
                [
                    *("mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-C", "1"),
                    *("-W", "5", "-t", "rufweiche/v1/queue/heimbuero/member/anna"),
                ],
                capture_output=True,
                timeout=10,
                check=False,
            )
    finally:
        for sink in sinks:
            sink.close()
    assert any("FINAL 503" in line for line in extra.log_lines()), extra.diagnostics()
    (busy,) = extra.received("SIP/2.0 503")
    # The edge counts a waiting caller as a dialog (dispatcher maxload 2) and refuses first.
    assert busy.startswith("SIP/2.0 503 All workers busy")
    assert re.search(r"^Retry-After: \d+", busy, re.M), busy  # RFC 3261 §20.33
    figures = queues["queues"]["heimbuero"]["figures"]["by_tenant"]["tischlerei"]
    assert figures["abandoned"] == 2  # both hung up while waiting
    assert queues["queues"]["heimbuero"]["members"]["anna"]["status"] == "paused"
    assert json.loads(retained.stdout) == {
        "queue": "heimbuero",
        "member": "anna",
        "status": "logged_out",
        "calls": 0,
    }


def test_a_full_queue_refuses_the_next_caller_with_503_before_answering(
    tmp_path: Path,
) -> None:
    # max_length 2, the only member paused: two callers wait; the third is refused before
    # anything is answered (the Tischlerei's plan has nothing after the queue step).
    anna = target(tmp_path, "anna", "uas_member.xml", calls=1, timeout=30)
    members = members_yaml(("anna", anna, ""))
    switch = start(tmp_path, settings(tmp_path, members, max_length="2"), overflow="")
    waiting, sinks, extra = refusal_callers(tmp_path, switch, "06", 5000)
    try:
        with running(switch, anna, *waiting, extra):
            queues = refuse_the_next(switch, waiting, extra)
            records = {r["caller"]: r for r in switch.calls()}
    finally:
        for sink in sinks:
            sink.close()
    assert extra.received("SIP/2.0 200") == []  # never answered
    (refused,) = extra.received("SIP/2.0 503")
    assert refused.startswith("SIP/2.0 503 Warteschlange voll"), refused
    assert re.search(r"^Retry-After: \d+", refused, re.M), refused  # RFC 3261 §20.33
    assert re.search(r'^Reason: SIP ?;cause=503;text="Warteschlange voll"', refused, re.M | re.I)
    figures = queues["queues"]["heimbuero"]["figures"]["by_tenant"]["tischlerei"]
    assert (figures["refused"], figures["abandoned"]) == (1, 2)
    assert records["+491715550699"]["outcome"] == "rejected"
    assert records["+491715550699"]["sip_status"] == 503


def test_a_reload_keeps_places_and_a_worker_crash_loses_only_its_callers(
    tmp_path: Path,
) -> None:
    import os
    import signal

    anna = target(tmp_path, "anna", "uas_member.xml", "-d", "5000", calls=2, timeout=60)
    switch = start(tmp_path, settings(tmp_path, members_yaml(("anna", anna, "")), wrapup="0"))
    numbers = [f"+4917155503{n:02d}" for n in range(1, 4)]
    callers, sinks = queue_callers(
        tmp_path,
        switch,
        numbers,
        timeout=40,
        timeout_error=False,  # the one whose worker dies never gets its BYE
    )
    try:
        with running(switch, anna, *callers):
            anna.start()
            anna.wait_bound()
            for call in callers:
                call.start()
                time.sleep(0.5)
            waiting = switch.wait_until(
                lambda: len(w := switch.get("/api/v1/queues")["queues"]["heimbuero"]["waiting"])
                == 2
                and w,
                5,
                "two callers waiting",
            )
            # A dial-plan reload (a plan file rewritten) leaves the queue as it was.
            plan = tmp_path / "plans" / "tischlerei.yaml"
            plan.write_text(plan.read_text() + "# edited\n")
            switch.wait_until(lambda: "dial plans reloaded" in switch.output(), 10, "reload")
            time.sleep(0.5)
            after = switch.get("/api/v1/queues")["queues"]["heimbuero"]["waiting"]
            assert [w["call_id"] for w in after] == [w["call_id"] for w in waiting]
            # The worker holding the first waiting caller dies.
            victim = waiting[0]["worker"]
            survivor = waiting[1]
            assert survivor["worker"] != victim  # the edge spreads calls by load
            pid = switch.health()["detail"]["workers"][victim]["pid"]
            os.kill(pid, signal.SIGKILL)
            switch.wait_until(
                lambda: waiting_ids(switch) == [survivor["call_id"]],
                10,
                "the dead worker's caller gone from the queue",
            )
            # The survivor moves up and anna takes it when she is free.
            assert callers[0].wait(20) == 0, callers[0].diagnostics()
            assert anna.wait(30) == 0, anna.diagnostics()
            switch.wait_until(
                lambda: sorted(r["outcome"] or "" for r in switch.calls())
                == ["aborted", "answered", "answered"],
                15,
                "records closed",
            )
            queues = switch.get("/api/v1/queues")
    finally:
        for sink in sinks:
            sink.close()
    figures = queues["queues"]["heimbuero"]["figures"]["by_tenant"]["tischlerei"]
    assert (figures["answered"], figures["aborted"]) == (2, 1)
