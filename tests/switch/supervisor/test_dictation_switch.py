"""The dictation box through the whole switch (``python -m switch run``), real Mosquitto.

The owner's phone (a SIPp caller whose From is his device) dials the plan's dictation
code and plays the pcap after the prompt and beep; the test then finds the WAV under
``var/dictation/<tenant>/``, the row behind ``/api/v1/dictations`` (with the person),
the file behind its URL, the MQTT message on ``rufweiche/v1/<tenant>/dictation``, and
that ``POST /api/v1/dictations/{id}/done`` sticks. A stranger's phone gets a 404.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.call.prompts import DICTATION_PROMPT
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.sipp import Sipp, stage_pcap
from tests.helpers.switch import Switch, recorded, switch_with_mqtt
from tests.helpers.worker import assert_stored_wav, make_prompts, voicemail_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(90)]


def dictation_plan(plans: Path, phone_port: int) -> None:
    plans.mkdir()
    voicemail_plan(
        plans / "test.yaml",
        f"sip:jan@{LOOPBACK}:{phone_port}",
        'media: {dictation_code: "*55", dictation_max: 30s}',
    )


def phone(tmp_path: Path, switch: Switch, port: int, user: str, wait_ms: int) -> Sipp:
    call = Sipp(
        tmp_path,
        "phone",
        "uac_voicemail.xml",
        [
            f"{LOOPBACK}:{switch.sip_port}",
            "-s",
            "*55",
            "-m",
            "1",
            "-timeout",
            "30",
            "-timeout_error",
            "-d",
            str(wait_ms),
        ],
        port=port,
    )
    call.cmd += ["-key", "caller", user]
    return call


def test_dictation_is_recorded_listed_served_notified_and_marked_done(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    seconds = make_prompts(data_dir, DICTATION_PROMPT)[DICTATION_PROMPT] + 0.3
    stage_pcap(tmp_path)
    phone_port = free_port()
    dictation_plan(tmp_path / "plans", phone_port)
    topic = "rufweiche/v1/test-tenant/dictation"
    with switch_with_mqtt(tmp_path, tmp_path / "plans", topic) as (switch, sub):
        call = phone(tmp_path, switch, phone_port, "jan", int((seconds + 0.6) * 1000))
        try:
            note, rows, served, content_type = recorded(switch, sub, call, "dictations")
            voicemails = switch.get("/api/v1/voicemails")["voicemails"]
            done = switch.post(f"/api/v1/dictations/{rows[0]['id']}/done")
            after = switch.get("/api/v1/dictations")["dictations"]
            calls = switch.calls()
        finally:
            call.stop()
    (row,) = rows
    assert_stored_wav(row, served, content_type, data_dir / "dictation" / "test-tenant")
    assert 6.5 < row["seconds"] < 9.5  # the pcap holds 7.05 s
    assert row["person"] == note["person"] == "jan"
    assert row["done_at"] is None
    assert note["path"] == row["path"]
    assert note["duration"] == pytest.approx(row["seconds"], abs=0.1)
    assert voicemails == []  # a dictation is not a voicemail
    assert calls == []  # nor a (missed) call of the business
    assert done["id"] == row["id"]
    assert done["done_at"]
    assert after[0]["done_at"] == done["done_at"]


def test_dictation_from_an_unknown_phone_is_refused(tmp_path: Path) -> None:
    phone_port = free_port()
    dictation_plan(tmp_path / "plans", free_port())  # jan's desk is another address
    switch = Switch(tmp_path, tmp_path / "plans")
    call = phone(tmp_path, switch, phone_port, "jan", 500)
    try:
        switch.start()
        call.start()
        assert call.wait(30) != 0  # the scenario expects a 200
        dictations = switch.get("/api/v1/dictations")["dictations"]
    finally:
        call.stop()
        if switch.proc is not None:
            switch.stop()
    assert dictations == []
    assert not (tmp_path / "var" / "dictation").exists()
