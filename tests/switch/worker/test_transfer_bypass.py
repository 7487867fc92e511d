"""Transfers of bypassed calls (issue 16): the REFER pulls the media back into the bridge.

The worker runs with ``--media-bypass``: the SIPp assistant (uas_answer_refer_reinvite.xml)
gets the bypass re-INVITE naming the caller's RTP address, so the audio no longer passes
pjsua2. Its REFER makes the worker re-INVITE both sides with pjsua2's own SDP: the caller
(uac_call_reinvite.xml, RTP port = a socket of this test) then hears the ringback tone of
the switch while the target rings, and the target's audio once bridged; a busy target
recalls the assistant through the bridge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.rtp import RtpSink, tone_packets
from tests.helpers.sipp import Sipp, start_bound
from tests.helpers.transfer import BUSINESS_E164, CALLER, ok, plan, sipp
from tests.helpers.worker import WorkerProcess

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(60)]


def _assistant(tmp_path: Path, target: str) -> Sipp:
    return sipp(
        tmp_path,
        "assistant",
        "uas_answer_refer_reinvite.xml",
        *("-key", "target", target, "-key", "refer_query", ""),
        "-rtp_echo",
    )


def _caller(tmp_path: Path, worker: WorkerProcess, sink: RtpSink, hold_ms: int) -> Sipp:
    return Sipp(
        tmp_path,
        "caller",
        "uac_call_reinvite.xml",
        [
            f"{LOOPBACK}:{worker.port}",
            *("-s", BUSINESS_E164, "-key", "caller", CALLER),
            *("-key", "rtp_port", str(sink.port)),
            *("-m", "1", "-d", str(hold_ms), "-timeout", "25", "-timeout_error"),
        ],
    )


def _run(
    tmp_path: Path, target_scenario: str, target: str, hold_ms: int
) -> tuple[dict[str, Any], RtpSink]:
    assistant = _assistant(tmp_path, target)
    other = sipp(tmp_path, "other", target_scenario, "-rtp_echo")
    device = target.split(".", 1)[1]
    worker = WorkerProcess(
        tmp_path,
        [plan(tmp_path, {device: other.address, "assistant": assistant.address})],
        extra=["--media-bypass"],
    )
    sink = RtpSink()
    call = _caller(tmp_path, worker, sink, hold_ms)
    try:
        with running(assistant, other, worker, call):
            start_bound(assistant, other)
            worker.start()
            call.start()
            ok(call, assistant, other)
            record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")
            lines = assistant.log_lines()
            assert "BYPASS REINVITE" in lines, "the call was not bypassed before the REFER"
            assert "RESTORE REINVITE" in lines, "the REFER did not pull the media back"
            assert "GOT REINVITE" in call.log_lines(), "the caller got no re-INVITE"
            # The bypass re-INVITE named the caller's own RTP port, not pjsua2's.
            reinvite = assistant.received("INVITE")[1]
            assert f"m=audio {sink.port} " in reinvite, reinvite
    finally:
        sink.close()
    return record["record"], sink


def test_ringback_reaches_a_bypassed_caller_while_the_target_rings(tmp_path: Path) -> None:
    record, sink = _run(tmp_path, "uas_ring_answer.xml", "jan.desk", 5000)
    assert record["transfer_outcome"] == "answered"
    assert record["answered_by"] == "jan.desk"
    tone = tone_packets(sink)
    # The desk rang 3 s: at least the first second of the cadence (50 packets of 20 ms).
    assert len(tone) >= 40, (len(tone), len(sink.packets))
    desk_leg = next(leg for leg in record["legs"] if leg["target"] == "jan.desk")
    assert desk_leg["media"]["rx_packets"] > 0  # the bridge carries the target's audio


def test_a_busy_target_recalls_the_assistant_through_the_bridge(tmp_path: Path) -> None:
    record, sink = _run(tmp_path, "uas_busy.xml", "jan.desk", 2000)
    assert record["transfer_outcome"] == "recalled"
    assert record["answered_by"] == "heimbuero.assistant"
    assert record["hung_up_by"] == "caller"
    # After the recall the caller hears the assistant again: its echo of the bridge.
    assert len(sink.packets) > 50, len(sink.packets)
