"""Answer confirmation against SIPp: the target must press 1 (RFC 4733) to take the call.

The first target answers and hears "Anruf für Test. Drücken Sie die 1 …". With the
RFC 4733 events of dtmf_2833_1.pcap it is bridged with the caller; without a digit it
gets a BYE after the plan's ``confirm_timeout`` and the next step rings instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from switch.call.prompts import CONFIRM_PROMPT
from tests.helpers.processes import running
from tests.helpers.sipp import BUSINESS, Sipp, caller
from tests.helpers.worker import WorkerProcess, call_record, make_prompts, start_call, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")
EVENT_PT = 120
"""pjsua offers telephone-event/8000 as payload type 120 (seen in its SDP); the pcap has 101."""


def dtmf_pcap_with_pt(source: Path, pt: int) -> bytes:
    """The pcap's RTP packets with their payload type set to ``pt`` (marker bit kept).

    pjmedia takes RFC 4733 events only with the payload type of its own SDP (RFC 4733
    §2.1 dynamic type), and SIPp sends the pcap's RTP bytes as they are.
    """
    data = bytearray(source.read_bytes())
    offset = 24
    while offset + 16 <= len(data):
        length = int.from_bytes(data[offset + 8 : offset + 12], "little")
        frame = offset + 16
        rtp = frame + 14 + (data[frame + 14] & 0x0F) * 4 + 8
        data[rtp + 1] = (data[rtp + 1] & 0x80) | pt
        offset = frame + length
    return bytes(data)


def setup(tmp_path: Path, mobile: Sipp, desk: Sipp) -> tuple[WorkerProcess, Sipp]:
    data_dir = tmp_path / "var"
    make_prompts(data_dir, CONFIRM_PROMPT.format(business="Test"))
    (tmp_path / "pcap").mkdir(exist_ok=True)
    (tmp_path / "pcap" / DTMF_PCAP.name).write_bytes(dtmf_pcap_with_pt(DTMF_PCAP, EVENT_PT))
    dialplan = write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: test-tenant
name: Test
numbers: ["{BUSINESS}"]
media: {{confirm_timeout: 3s}}
people:
  jan:
    name: Jan
    devices: {{mobile: "sip:mobile@{mobile.address}", desk: "sip:desk@{desk.address}"}}
rules:
  - name: confirm
    then:
      - {{ring: jan.mobile, timeout: 15s, confirm: true}}
      - {{ring: jan.desk, timeout: 5s}}
      - reject
""",
    )
    worker = WorkerProcess(tmp_path, [dialplan], extra=["--data-dir", str(data_dir)])
    call = caller(tmp_path, worker.port, "uac_call.xml", timeout=25, hold_ms=1000)
    return worker, call


def target(tmp_path: Path, name: str, scenario: str) -> Sipp:
    return Sipp(tmp_path, name, scenario, calls=1, timeout=25)


def confirmed_call(tmp_path: Path, scenario: str) -> tuple[dict[str, Any], Sipp]:
    """A call that the mobile (SIPp ``scenario``) confirms; its record and the mobile."""
    mobile = target(tmp_path, "mobile", scenario)
    desk = target(tmp_path, "desk", "uas_answer.xml")
    worker, call = setup(tmp_path, mobile, desk)
    with running(mobile, desk, worker, call):
        start_call(worker, call, mobile)
        record = call_record(worker, call)
        assert mobile.wait(10) == 0, mobile.diagnostics()
    return record, mobile


def test_target_pressing_1_takes_the_call(tmp_path: Path) -> None:
    record, mobile = confirmed_call(tmp_path, "uas_confirm_dtmf.xml")
    assert record["outcome"] == "answered"
    assert record["answered_by"] == "jan.mobile"
    assert [leg["target"] for leg in record["legs"]] == ["jan.mobile"]  # the desk never rang
    assert "DTMF 1" in mobile.log_lines()
    # The caller got its 200 only after the digit: ringing, not answered, while confirming.
    assert record["answer_relayed_ns"] - record["answer_in_ns"] > 1.0e9


def test_target_pressing_1_as_sip_info_takes_the_call(tmp_path: Path) -> None:
    record, mobile = confirmed_call(tmp_path, "uas_confirm_info.xml")
    assert "INFO ANSWERED" in mobile.log_lines()
    assert record["answered_by"] == "jan.mobile"
    assert [leg["target"] for leg in record["legs"]] == ["jan.mobile"]


def test_no_digit_counts_as_no_answer_and_the_next_step_rings(tmp_path: Path) -> None:
    mobile = target(tmp_path, "mobile", "uas_answer_silent.xml")
    desk = target(tmp_path, "desk", "uas_answer.xml")
    worker, call = setup(tmp_path, mobile, desk)
    with running(mobile, desk, worker, call):
        started = start_call(worker, call, mobile, desk)
        record = call_record(worker, call)
        assert mobile.wait(10) == 0, mobile.diagnostics()
        elapsed = time.monotonic() - started
    assert record["outcome"] == "answered"
    assert record["answered_by"] == "jan.desk"
    mobile_leg, desk_leg = record["legs"]
    assert mobile_leg["target"] == "jan.mobile"
    assert mobile_leg["answered_ns"] is not None  # it did answer, but never confirmed
    assert "GOT BYE" in mobile.log_lines()
    assert desk_leg["invite_out_ns"] - mobile_leg["answered_ns"] == pytest.approx(3e9, abs=0.5e9)
    assert elapsed < 15


def test_caller_does_not_hear_the_target_while_it_confirms(tmp_path: Path) -> None:
    """A target with early media (183 + audio, as mobile networks send) is bridged with the
    caller while it rings; once it answers and is asked to press 1, that bridge is cut,
    so the caller never hears e.g. a mobile mailbox's greeting; after the 1 it is back."""
    from tests.helpers.rtp import ALAW, RtpSink, rms
    from tests.helpers.sipp import stage_pcap

    mobile = target(tmp_path, "mobile", "uas_early_confirm.xml")
    desk = target(tmp_path, "desk", "uas_answer.xml")
    worker, _ = setup(tmp_path, mobile, desk)
    stage_pcap(tmp_path)
    sink = RtpSink()
    call = caller(
        tmp_path,
        worker.port,
        "uac_call_listen.xml",
        rtp_port=sink.port,
        timeout=25,
        hold_ms=1500,
    )
    try:
        with running(mobile, desk, worker, call):
            start_call(worker, call, mobile)
            record = call_record(worker, call)
    finally:
        sink.close()
    assert record["answered_by"] == "jan.mobile"
    assert "PROV 183" in call.log_lines()

    def level(start_ns: int, end_ns: int) -> float:
        samples = [
            ALAW[b]
            for t, pt, payload in sink.packets
            if pt == 8 and start_ns < t * 1e9 < end_ns
            for b in payload
        ]
        return rms(samples) if samples else 0.0

    answered, relayed = record["answer_in_ns"], record["answer_relayed_ns"]
    # Both stamps are CLOCK_MONOTONIC readings, the clock of time.monotonic() here too.
    before = level(record["first_18x_in_ns"] + 100_000_000, answered)
    during = level(answered + 200_000_000, relayed - 100_000_000)
    after = level(relayed + 200_000_000, relayed + 1_200_000_000)
    assert before > 300, before  # the early media was relayed
    assert during < 50, during  # nothing of the target while it confirms
    assert after > 300, after  # and its audio again once bridged
