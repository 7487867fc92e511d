"""The B2BUA worker against SIPp callers and targets: ringing, failover, cancel, hang-up, capacity.

Each test writes a dial plan into tmp_path whose devices are SIPp processes on free
loopback ports, starts ``python -m switch.worker`` with a control socketpair, places
calls with SIPp and checks what each peer received plus the call records the worker sent.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from switch.call.calllog import MediaStats
from switch.call.quality import mos_for
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.rawsip import sip_options
from tests.helpers.sipp import BUSINESS_E164, CALLER, caller, target
from tests.helpers.worker import (
    WorkerProcess,
    callee_worker,
    completed_call,
    ended,
    plan,
    ring_worker,
    start_call,
)

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]


def header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*)$", message, re.MULTILINE | re.IGNORECASE)
    assert match, f"no {name} in\n{message}"
    return match.group(1).strip()


def test_sequential_ring_first_times_out_second_answers(tmp_path: Path) -> None:
    desk = target(tmp_path, "desk", "uas_ring.xml")
    mobile = target(tmp_path, "mobile", "uas_answer.xml", "-rtp_echo")
    worker = ring_worker(
        tmp_path,
        "      - {ring: [jan.desk], timeout: 1s}\n      - {ring: [jan.mobile], timeout: 5s}",
        desk,
        mobile,
    )
    call = caller(tmp_path, worker.port, "uac_call.xml", "-d", "500")
    with completed_call(worker, call, desk, mobile) as started:
        assert time.monotonic() - started >= 1.0  # the desk rang for its full second

        assert "GOT CANCEL" in desk.log_lines()
        invite = mobile.received("INVITE")[0]
        assert header(invite, "From").startswith(f'"Tischlerei Test: {CALLER}" <sip:{CALLER}@')
        assert header(invite, "P-Asserted-Identity").startswith(f"<sip:{CALLER}@")
        assert header(invite, "Diversion") == (
            f"<sip:{BUSINESS_E164}@{LOOPBACK}:{worker.port}>;reason=unconditional;counter=1"
        )
        history = header(invite, "History-Info")
        assert history.startswith(f"<sip:{BUSINESS_E164}@")
        assert "index=1.1;mp=1" in history
        assert "FINAL 200" in call.log_lines()
        assert "PROV 180" in call.log_lines()

        record = worker.wait_for(ended)["record"]
        assert record["outcome"] == "answered"
        assert record["answered_by"] == "jan.mobile"
        assert record["hung_up_by"] == "caller"
        assert [(leg["target"], leg["status"]) for leg in record["legs"]] == [
            ("jan.desk", 487),
            ("jan.mobile", 200),
        ]
        for stamp in ("decision_ns", "first_18x_in_ns", "first_18x_relayed_ns", "answer_in_ns"):
            assert record[stamp] >= record["invite_in_ns"], stamp
        assert record["answer_relayed_ns"] >= record["answer_in_ns"]
        assert all(leg["invite_out_ns"] >= record["decision_ns"] for leg in record["legs"])
        mobile_media = record["legs"][1]["media"]
        assert mobile_media
        assert mobile_media["rx_packets"] > 0
        # Issue 13: the leg's MOS is the E-model's figure for its own RTCP readings.
        expected = mos_for(MediaStats(**{**mobile_media, "mos": None}))
        assert expected is not None, mobile_media
        assert mobile_media["mos"] == expected
        assert worker.alive()


def test_parallel_ring_first_answer_wins_others_cancelled(tmp_path: Path) -> None:
    a = target(tmp_path, "a", "uas_answer.xml")
    b = target(tmp_path, "b", "uas_ring.xml")
    c = target(tmp_path, "c", "uas_ring.xml")
    worker = ring_worker(
        tmp_path, "      - {ring: [jan.a, jan.b, jan.c], parallel: true, timeout: 5s}", a, b, c
    )
    call = caller(tmp_path, worker.port, "uac_call.xml", "-d", "300")
    with completed_call(worker, call, a, b, c):
        assert "GOT CANCEL" in b.log_lines()
        assert "GOT CANCEL" in c.log_lines()
        assert "GOT BYE" in a.log_lines()
        record = worker.wait_for(ended)["record"]
        assert record["answered_by"] == "jan.a"
        assert sorted(leg["status"] for leg in record["legs"]) == [200, 487, 487]


def test_busy_target_fails_over_to_next_step(tmp_path: Path) -> None:
    busy = target(tmp_path, "busy", "uas_busy.xml")
    other = target(tmp_path, "other", "uas_answer.xml")
    worker = ring_worker(
        tmp_path,
        "      - {ring: [jan.busy], timeout: 10s}\n      - {ring: [jan.other], timeout: 5s}",
        busy,
        other,
    )
    call = caller(tmp_path, worker.port, "uac_call.xml", "-d", "200")
    with completed_call(worker, call, busy, other) as started:
        assert time.monotonic() - started < 5  # failover on 486 at once, not after 10 s
        record = worker.wait_for(ended)["record"]
        assert [(leg["target"], leg["status"]) for leg in record["legs"]] == [
            ("jan.busy", 486),
            ("jan.other", 200),
        ]


def test_caller_cancels_while_ringing_every_target_gets_cancel(tmp_path: Path) -> None:
    a = target(tmp_path, "a", "uas_ring.xml")
    b = target(tmp_path, "b", "uas_ring.xml")
    worker = ring_worker(
        tmp_path, "      - {ring: [jan.a, jan.b], parallel: true, timeout: 10s}", a, b
    )
    call = caller(tmp_path, worker.port, "uac_cancel.xml")
    with completed_call(worker, call, a, b):
        assert "FINAL 487" in call.log_lines()
        assert "GOT CANCEL" in a.log_lines()
        assert "GOT CANCEL" in b.log_lines()
        record = worker.wait_for(ended)["record"]
        assert record["outcome"] == "cancelled"
        assert record["hung_up_by"] == "caller"


def test_callee_hangs_up_caller_gets_bye(tmp_path: Path) -> None:
    callee = target(tmp_path, "callee", "uas_answer_bye.xml")
    worker = callee_worker(tmp_path, callee)
    call = caller(tmp_path, worker.port, "uac_wait_bye.xml")
    with completed_call(worker, call, callee):
        assert "GOT BYE" in call.log_lines()
        assert "BYE ANSWERED" in callee.log_lines()
        record = worker.wait_for(ended)["record"]
        assert record["hung_up_by"] == "callee"
        assert record["outcome"] == "answered"


def test_early_media_183_is_relayed_with_sdp(tmp_path: Path) -> None:
    callee = target(tmp_path, "callee", "uas_early.xml", "-rtp_echo")
    worker = callee_worker(tmp_path, callee)
    call = caller(tmp_path, worker.port, "uac_call.xml", "-d", "200")
    with completed_call(worker, call, callee):
        assert "PROV 183" in call.log_lines()
        progress = call.received("SIP/2.0 183")[0]
        assert "application/sdp" in progress.lower()
        assert "m=audio" in progress


def test_unknown_number_gets_404_and_worker_answers_options(tmp_path: Path) -> None:
    dialplan = plan(tmp_path, "      - {ring: [jan.x], timeout: 5s}", {"x": "127.0.0.1:9"})
    worker = WorkerProcess(tmp_path, [dialplan])
    call = caller(tmp_path, worker.port, "uac_final.xml", service="+49301111111", timeout=10)
    with completed_call(worker, call):
        assert "FINAL 404" in call.log_lines()
        assert sip_options(worker.port) == "SIP/2.0 200 OK"
        record = worker.wait_for(ended)["record"]
        assert record["tenant"] is None
        assert record["sip_status"] == 404
        assert record["outcome"] == "rejected"


def five_calls(tmp_path: Path, *worker_args: str) -> tuple[list[str], WorkerProcess]:
    callee = target(tmp_path, "callee", "uas_answer.xml", calls=5)
    worker = callee_worker(tmp_path, callee, extra=worker_args)
    call = caller(
        tmp_path,
        worker.port,
        "uac_final.xml",
        "-l",
        "5",
        calls=5,
        rate=50,
        hold_ms=1500,
        timeout=15,
        timeout_error=False,
    )
    with running(callee, worker, call):
        start_call(worker, call, callee)
        call.wait(20)
        finals = [line.split()[-1] for line in call.log_lines() if line.startswith("FINAL")]
        assert len(finals) == 5, call.diagnostics()
        assert worker.alive()
        assert sip_options(worker.port) == "SIP/2.0 200 OK"
        for response in call.received("SIP/2.0 503"):
            assert re.search(r"^Retry-After: \d+", response, re.MULTILINE), response
    return finals, worker


def test_five_calls_at_once_two_bridged_rest_rejected_worker_survives(tmp_path: Path) -> None:
    finals, _ = five_calls(tmp_path)
    assert finals.count("200") == 2, finals  # two bridged calls fill pjsua's 4 call slots
    # Beyond that pjsua answers 486 itself, before the worker sees the INVITE; a call
    # arriving while a slot is still free gets the worker's 503 + Retry-After.
    assert sorted(finals) == ["200", "200", *sorted(f for f in finals if f in ("486", "503"))]


def test_five_calls_with_spare_leg_overflow_gets_503(tmp_path: Path) -> None:
    finals, worker = five_calls(tmp_path, "--spare-leg")
    assert finals.count("200") == 1, finals
    # The spare slot takes each overflow call long enough to answer it 503. Two INVITEs in
    # the very same instant can still find it taken by the other; pjsua then answers 486
    # itself. On a quiet machine all four get 503; under load at most one is pjsua's.
    assert finals.count("503") >= 3, finals
    assert set(finals) <= {"200", "503", "486"}, finals
    assert worker.wait_for(lambda m: m["op"] == "ready")["capacity"] == 3
    rejected = [r for r in worker.records("ended") if r["sip_status"] == 503]
    assert [r["tenant"] for r in rejected] == ["test-tenant"] * finals.count("503")
