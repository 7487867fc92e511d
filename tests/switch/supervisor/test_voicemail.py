"""switch/supervisor/voicemail.py: a voicemail is filed, and announced through the one MQTT bridge.

The notice goes out on the supervisor's long-lived :class:`presence.mqtt.PresenceBridge`
session (no client of its own per message): shown against a real Mosquitto, and against
a broker that is not there (the record is kept, the notice dropped, nothing hangs).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiomqtt
import pytest

from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from switch.records.schema import RECORDS_FILE
from switch.records.voicemails import Voicemail
from switch.supervisor.voicemail import VoicemailBox, payload
from tests.peers import mosquitto_broker
from tests.switch.records.test_voicemails import worker_report


def test_notice_payload() -> None:
    mail = Voicemail.from_message(worker_report(), "masked")
    assert json.loads(payload(mail)) == {
        "call_id": "abc@host",
        "path": "/var/voicemail/mueller/x.wav",
        "caller": "+491********78",
        "duration": 12.3,
        "time": "2026-11-25T02:56:36.000+00:00",
    }
    dictation = Voicemail.from_message(worker_report(kind="dictation", person="jan"), "none")
    assert json.loads(payload(dictation))["person"] == "jan"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_box_stores_lists_and_survives_a_dead_broker(tmp_path: Path) -> None:
    hub = PresenceHub({})
    async with (
        PresenceBridge(hub, "127.0.0.1", closed_port(), backoff_initial=0.05) as bridge,
        VoicemailBox(tmp_path / RECORDS_FILE, bridge, publish_timeout=0.3) as box,
    ):
        await box.add(worker_report(), "none")
        await box.add(
            worker_report(call_id="second", started_wall=1_795_575_500.0, tenant="other"), "full"
        )
        rows = await box.list()
        assert [r["call_id"] for r in rows] == ["second", "abc@host"]
        assert rows[1]["caller"] is None  # store_caller: none
        assert [r["call_id"] for r in await box.list("mueller")] == ["abc@host"]
    assert not box._tasks  # the notices were given up within publish_timeout


@pytest.mark.peer
async def test_notices_go_out_on_the_bridges_session(tmp_path: Path) -> None:
    with mosquitto_broker(tmp_path) as broker:
        host, port = broker.address
        async with aiomqtt.Client(host, port, timeout=5) as listener:
            await listener.subscribe("rufweiche/v1/+/voicemail", qos=1)
            await listener.subscribe("rufweiche/v1/+/dictation", qos=1)
            hub = PresenceHub({})
            async with (
                PresenceBridge(hub, host, port, discovery=False, timeout=2) as bridge,
                VoicemailBox(tmp_path / RECORDS_FILE, bridge) as box,
            ):
                await box.add(worker_report(), "masked")  # before the bridge is connected
                await asyncio.wait_for(bridge.connected.wait(), 5)
                await box.add(worker_report(kind="dictation", person="jan", call_id="d"), "full")
                got: dict[str, tuple[dict[str, object], bool]] = {}
                async with asyncio.timeout(5):
                    while len(got) < 2:
                        message = await anext(listener.messages)
                        if str(message.topic).endswith(("/voicemail", "/dictation")):
                            assert isinstance(message.payload, bytes)
                            got[str(message.topic)] = (json.loads(message.payload), message.retain)
                assert bridge.connections == 1  # one session carried both notices
    voicemail, retained = got["rufweiche/v1/mueller/voicemail"]
    assert (voicemail["call_id"], voicemail["caller"], retained) == (
        "abc@host",
        "+491********78",
        False,
    )
    dictation, retained = got["rufweiche/v1/mueller/dictation"]
    assert (dictation["call_id"], dictation["person"], retained) == ("d", "jan", False)
