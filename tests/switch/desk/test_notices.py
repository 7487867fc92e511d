"""Notices to the owner (issue 18, item 5) against real peers: a missed call and a voicemail
are mailed through the business's mail server (aiosmtpd, STARTTLS), the WAV attached or
linked by setting; the missed call is also announced on MQTT (a test-owned Mosquitto)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiomqtt
import pytest

from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from presence.topics import Topics
from switch.records.voicemails import Voicemail
from switch.supervisor.notices import Notifier
from tests.helpers.desk import load_plans, smtp_server
from tests.helpers.mosquitto import mosquitto_broker
from tests.helpers.records import make_record
from tests.helpers.web import DIRECTORY

pytestmark = [pytest.mark.peer]
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


def parsed(raw: bytes | str | None) -> EmailMessage:
    assert isinstance(raw, bytes)
    raw.decode("ascii")  # 7-bit on the wire
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


async def test_missed_call_is_mailed_and_announced(tmp_path: Path) -> None:
    plans = load_plans(tmp_path)
    missed = dataclasses.replace(
        make_record(tenant="mueller", caller="+4917155501234", outcome="missed"),
        called="+4923319876540",
    )
    with smtp_server(tmp_path) as sink, mosquitto_broker(tmp_path) as broker:
        hub = PresenceHub(DIRECTORY)
        async with (
            PresenceBridge(hub, broker.host, broker.port, timeout=2, stop_timeout=2) as bridge,
            aiomqtt.Client(broker.host, broker.port) as listener,
        ):
            await listener.subscribe(Topics().event("mueller", "missed"), qos=1)
            await asyncio.wait_for(bridge.connected.wait(), 5)
            notifier = Notifier(plans.get, lambda _t: sink.server, bridge)
            notifier.on_call("started", missed)  # only the end counts
            notifier.on_call("ended", dataclasses.replace(missed, outcome="answered"))
            notifier.on_call("ended", missed)
            async with asyncio.timeout(5):
                async for received in listener.messages:
                    assert isinstance(received.payload, bytes)
                    announced = json.loads(received.payload)
                    break
            await notifier.idle()
    assert announced["caller"] == "+4917155501234"
    assert announced["outcome"] == "missed"
    assert notifier.sent == ["missed"]
    [envelope] = sink.inbox.envelopes
    mail = parsed(envelope.content)
    assert mail["Subject"] == "Verpasster Anruf für Tischlerei Müller: +4917155501234"
    assert "Gewählt: +4923319876540" in mail.get_content()
    assert sink.inbox.tls == [True]


@pytest.mark.parametrize("how", ["attach", "link"])
async def test_voicemail_is_mailed_with_the_wav(tmp_path: Path, how: str) -> None:
    plans = load_plans(tmp_path)
    wav = tmp_path / "vm-1.wav"
    wav.write_bytes(WAV)
    mail_in = Voicemail("mueller", "c-1", "+4917155501234", "+4923319876540", str(wav), 12.4, 1.8e9)
    with smtp_server(tmp_path) as sink:
        notifier = Notifier(
            plans.get,
            lambda _t: sink.server,
            recordings="attach" if how == "attach" else "link",
            base_url="https://pbx.example/",
        )
        notifier.on_recording(mail_in)
        await notifier.idle()
    mail = parsed(sink.inbox.envelopes[0].content)
    assert mail["Subject"] == (
        "Nachricht auf dem Anrufbeantworter für Tischlerei Müller: +4917155501234"
    )
    attachments = list(mail.iter_attachments())
    if how == "attach":
        [part] = attachments
        assert part.get_content_type() == "audio/wav"
        assert part.get_filename() == "vm-1.wav"
        assert part.get_content() == WAV
        assert "Die Aufnahme ist angehängt." in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    else:
        assert attachments == []
        assert "Anhören: https://pbx.example/files/voicemail/mueller/vm-1.wav" in mail.get_content()
