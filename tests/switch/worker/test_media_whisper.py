"""Whisper: the secretarial service hears the business name before the caller is put through."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.call.prompts import WHISPER_PROMPT
from tests.helpers.processes import running
from tests.helpers.rtp import ALAW, RtpSink, rms
from tests.helpers.sipp import BUSINESS, Sipp, caller
from tests.helpers.worker import WorkerProcess, call_record, make_prompts, start_call, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]


def test_service_hears_the_business_name_then_is_bridged(tmp_path: Path) -> None:
    text = WHISPER_PROMPT.format(business="Tischlerei Test")
    seconds = make_prompts(tmp_path / "var", text)[text]
    sink = RtpSink()
    assistant = Sipp(
        tmp_path,
        "assistant",
        "uas_answer_listen.xml",
        ["-m", "1", "-timeout", "25", "-key", "rtp_port", str(sink.port)],
    )
    dialplan = write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: test-tenant
name: Tischlerei Test
numbers: ["{BUSINESS}"]
media: {{whisper: true}}
people:
  jan:
    name: Jan
    devices: {{desk: "sip:201@127.0.0.1:9"}}
service:
  heimbuero:
    devices: {{anna: "sip:anna@{assistant.address}"}}
rules:
  - name: service
    then: [{{ring: heimbuero, timeout: 15s}}]
""",
    )
    worker = WorkerProcess(tmp_path, [dialplan], extra=["--data-dir", str(tmp_path / "var")])
    call = caller(tmp_path, worker.port, "uac_call.xml", timeout=25, hold_ms=1000)
    try:
        with running(assistant, worker, call):
            start_call(worker, call, assistant)
            record = call_record(worker, call)
    finally:
        sink.close()
    assert record["answered_by"] == "heimbuero"
    assert record["answered_by_service"] is True
    # The caller was put through only once the whisper had been played to the assistant.
    waited = (record["answer_relayed_ns"] - record["answer_in_ns"]) / 1e9
    assert seconds - 0.2 < waited < seconds + 0.6, (waited, seconds)
    first = sink.packets[0][0]
    whisper = [p for t, pt, p in sink.packets if pt == 8 and t - first < seconds]
    assert len(whisper) > seconds * 40  # ≥ 80 % of 20 ms packets (10 ms ptime doubles it)
    assert rms([ALAW[b] for payload in whisper for b in payload]) > 300
