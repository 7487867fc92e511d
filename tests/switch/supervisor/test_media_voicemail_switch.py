"""Voicemail through the whole switch (``python -m switch run``) with a real Mosquitto.

A SIPp caller (pcap audio) leaves a message; the test then finds the WAV file, the
``voicemails`` record behind ``/api/v1/voicemails``, the file behind its URL, and the
MQTT notification on ``rufweiche/v1/<tenant>/voicemail`` of a test-owned broker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switch.call.prompts import prompt_texts
from tests.helpers.sipp import CALLER, caller, stage_pcap
from tests.helpers.switch import recorded, switch_with_mqtt
from tests.helpers.worker import assert_stored_wav, make_prompts, voicemail_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


def test_voicemail_is_recorded_listed_served_and_notified(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    greeting = prompt_texts("Test")[0]
    seconds = make_prompts(data_dir, greeting)[greeting] + 0.3
    stage_pcap(tmp_path)
    plans = tmp_path / "plans"
    plans.mkdir()
    voicemail_plan(plans / "test.yaml", "sip:201@127.0.0.1:9", "privacy: {store_caller: masked}")
    topic = "rufweiche/v1/test-tenant/voicemail"
    with switch_with_mqtt(tmp_path, plans, topic) as (switch, sub):
        call = caller(
            tmp_path,
            switch.sip_port,
            "uac_voicemail.xml",
            timeout=30,
            hold_ms=int((seconds + 0.6) * 1000),
        )
        try:
            note, mails, served, content_type = recorded(switch, sub, call, "voicemails")
            calls = switch.calls()
        finally:
            call.stop()
    (mail,) = mails
    assert_stored_wav(mail, served, content_type, data_dir / "voicemail" / "test-tenant")
    assert 7.0 < mail["seconds"] < 9.5
    # privacy.store_caller: masked holds for the record and the notification alike.
    assert mail["caller"] == note["caller"] == "+491*******00"
    assert CALLER not in json.dumps(note)
    assert note["path"] == mail["path"]
    assert note["duration"] == pytest.approx(mail["seconds"], abs=0.1)
    assert note["call_id"] == mail["call_id"]
    assert calls[0]["outcome"] == "missed"
    assert calls[0]["final_action"] == "voicemail"
