"""switch/worker/media.py and the voicemail routes without pjsua2: fake ports, real files.

The fake stands in for switch/pjsua/media.py (its SIP behaviour is shown by the SIPp
tests in test_media_calls.py beside this file); here: which file is played, what is reported, when.
"""

from __future__ import annotations

import asyncio
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rules import load_plan_text
from switch.call.events import (
    CALLER,
    PlaybackDone,
    PlayPrompt,
    RecordCaller,
    StopPlayback,
    StopRecording,
)
from switch.call.prompts import CONFIRM_PROMPT, DICTATION_PROMPT, VOICEMAIL_GREETING, WHISPER_PROMPT
from switch.control.messages import FromWorker, VoicemailFiled, op_of
from switch.supervisor.voicemail import (
    VoicemailBox,
)
from switch.web.voicemail_api import voicemail_routes
from switch.worker.announcements import Announcements, PromptCache, write_tone
from switch.worker.media import (
    CallContext,
    MediaServices,
    TenantMedia,
    _complete_wav_seconds,
    plan_prompts,
    tenant_media,
    voicemail_path,
)
from tests.helpers.records import worker_report

PLAN = """
tenant: mueller
name: Tischlerei Müller
numbers: ["+49 30 1234560"]
media: {voice: en, voicemail_max: 45s, confirm_timeout: 4s, whisper: true}
people:
  jan:
    name: Jan
    devices: {desk: "sip:201@office"}
rules:
  - name: holidays
    when: {weekday: sun}
    then: {announcement: "Heute geschlossen."}
  - name: default
    then: [{ring: jan.desk}, voicemail]
"""


@dataclass
class FakePorts:
    played: list[tuple[int, list[str]]] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    recording: dict[int, str] = field(default_factory=dict)
    finished: list[Any] = field(default_factory=list)
    fail_play: bool = False

    def play(self, handle: int, files: list[str]) -> int:
        if self.fail_play:
            raise RuntimeError("no audio")
        self.played.append((handle, files))
        return len(self.played)

    def stop(self, token: int) -> None:
        self.stopped.append(token)

    def ended(self) -> list[Any]:
        done, self.finished = self.finished, []
        return done

    def record(self, handle: int, path: str) -> None:
        self.recording[handle] = path

    def stop_recording(self, handle: int) -> str | None:
        path = self.recording.pop(handle, None)
        if path is not None:
            write_tone(Path(path), seconds=2.5)  # what the recorder leaves behind
        return path


@dataclass(frozen=True)
class Ended:
    handle: int
    token: int
    at: int


def context(key: int = 1) -> CallContext:
    return CallContext(key, "mueller", "abc@host", "+4917112345678", "+49301234560", 7, {1: 9})


def services(tmp_path: Path, ports: FakePorts, sent: list[FromWorker]) -> MediaServices:
    return MediaServices(
        tmp_path,
        ports,
        sent.append,
        clock=lambda: datetime(2026, 11, 25, 3, tzinfo=UTC).timestamp(),
    )


def test_plan_media_keys_and_prompts() -> None:
    plan = load_plan_text(PLAN)
    assert tenant_media(plan) == TenantMedia("en", 45.0, 4.0, True)
    options = tenant_media(plan).options()
    assert (options.voicemail_max_s, options.confirm_timeout_s, options.whisper) == (45, 4, True)
    texts = [p.text for p in plan_prompts(plan)]
    business = "Tischlerei Müller"
    assert texts == [
        WHISPER_PROMPT.format(business=business),
        "Heute geschlossen.",
        VOICEMAIL_GREETING.format(business=business),
        DICTATION_PROMPT,  # the plan has people: the dictation box
    ]
    bare = load_plan_text(
        PLAN.replace(
            "media: {voice: en, voicemail_max: 45s, confirm_timeout: 4s, whisper: true}\n", ""
        ).replace("[{ring: jan.desk}, voicemail]", "[{ring: jan.desk, confirm: true}]")
    )
    assert [p.text for p in plan_prompts(bare)] == [
        "Heute geschlossen.",
        CONFIRM_PROMPT.format(business=business),
        DICTATION_PROMPT,
    ]
    assert {p.voice for p in plan_prompts(plan)} == {"en"}
    assert tenant_media(object()) == TenantMedia()


def test_voicemail_path_is_safe() -> None:
    when = datetime(2026, 11, 25, 3, 4, 5, tzinfo=UTC)
    path = voicemail_path(Path("/d"), "mueller", "a/../b c@h", when)
    assert path == Path("/d/voicemail/mueller/20261125-030405-a_.._b_c_h.wav")


def test_play_uses_the_ready_file_and_appends_the_beep(tmp_path: Path) -> None:
    ports = FakePorts()
    sent: list[FromWorker] = []
    media = services(tmp_path, ports, sent)
    media.prepare([load_plan_text(PLAN)])
    write_tone(tmp_path / "announcements" / "mueller" / "ansage.wav")  # an owner recording
    assert media.carry_out(context(), PlayPrompt(CALLER, "ansage", beep=True)) == []
    ((handle, files),) = ports.played
    assert handle == 7
    assert files[0].endswith("announcements/mueller/ansage.wav")
    assert files[1].endswith("beep-1khz-300ms.wav")
    ports.finished.append(Ended(7, 1, 123))
    assert media.ended() == [(1, PlaybackDone(CALLER, 123))]
    assert media.ended() == []  # reported once


def test_a_prompt_not_ready_is_skipped_at_once(tmp_path: Path) -> None:
    ports = FakePorts()
    sent: list[FromWorker] = []
    media = services(tmp_path, ports, sent)
    media.prompts = PromptCache(Announcements(tmp_path, espeak="no-such-espeak"))
    (event,) = media.carry_out(context(), PlayPrompt(1, "Noch nicht gemacht"))
    assert isinstance(event, PlaybackDone)
    assert (event.leg, event.played) == (1, False)
    assert ports.played == []
    ports.fail_play = True
    write_tone(tmp_path / "announcements" / "mueller" / "x.wav")
    (event,) = media.carry_out(context(), PlayPrompt(CALLER, "x"))
    assert isinstance(event, PlaybackDone)
    assert event.played is False


def test_stop_playback_forgets_the_prompt(tmp_path: Path) -> None:
    ports = FakePorts()
    sent: list[FromWorker] = []
    media = services(tmp_path, ports, sent)
    write_tone(tmp_path / "announcements" / "mueller" / "x.wav")
    media.carry_out(context(), PlayPrompt(1, "x"))
    media.carry_out(context(), StopPlayback(1))
    assert ports.stopped == [1]
    ports.finished.append(Ended(9, 1, 5))
    assert media.ended() == []


def test_recording_is_reported_once_the_file_is_complete(tmp_path: Path) -> None:
    ports = FakePorts()
    sent: list[FromWorker] = []
    media = services(tmp_path, ports, sent)
    media.carry_out(context(), RecordCaller(60))
    assert list(ports.recording) == [7]
    media.carry_out(context(), StopRecording())
    (filed,) = sent
    assert isinstance(filed, VoicemailFiled)
    message = filed.fields()
    assert message["op"] == "voicemail"
    assert message["seconds"] == pytest.approx(2.5)
    assert message["caller"] == "+4917112345678"
    assert message["path"].endswith("voicemail/mueller/20261125-030000-abc_host.wav")
    media.call_ended(1)
    assert len(sent) == 1


def test_call_end_reports_an_open_recording(tmp_path: Path) -> None:
    ports = FakePorts()
    sent: list[FromWorker] = []
    media = services(tmp_path, ports, sent)
    media.carry_out(context(), RecordCaller(60))
    media.call_ended(1)
    assert [op_of(m) for m in sent] == ["voicemail"]


def test_incomplete_wav_header_is_not_read_as_complete(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    assert _complete_wav_seconds(path) is None
    write_tone(path, seconds=1.0)
    assert _complete_wav_seconds(path) == pytest.approx(1.0)
    data = bytearray(path.read_bytes())
    data[40:44] = (0).to_bytes(4, "little")  # data size not filled in yet
    path.write_bytes(bytes(data))
    assert _complete_wav_seconds(path) is None


# ------------------------------------------------------------------ voicemail routes
# (the box's storage and MQTT notices: tests/switch/records/test_voicemails.py and
# tests/switch/supervisor/test_voicemail.py)


async def test_routes_list_and_serve_only_voicemail_files(tmp_path: Path) -> None:
    wav = write_tone(tmp_path / "voicemail" / "mueller" / "20261125-x.wav")
    (tmp_path / "secret.wav").write_bytes(b"no")
    async with VoicemailBox(tmp_path / "calls.sqlite3") as box:
        await box.add(worker_report(path=str(wav)), "full")
        app = web.Application()
        app.add_routes(voicemail_routes(box, tmp_path))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/api/v1/voicemails?tenant=mueller") as response:
                    (row,) = (await response.json())["voicemails"]
                async with http.get(base + row["url"]) as response:
                    assert response.status == 200
                    assert await response.read() == wav.read_bytes()
                for bad in (
                    "/files/voicemail/mueller/..%2F..%2Fsecret.wav",
                    "/files/voicemail/Mueller/x.wav",
                    "/files/voicemail/mueller/missing.wav",
                ):
                    async with http.get(base + bad) as response:
                        assert response.status == 404, bad
        finally:
            await runner.cleanup()
    with wave.open(str(wav)) as check:
        assert check.getframerate() == 8000
    await asyncio.sleep(0)
