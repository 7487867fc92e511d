"""switch/supervisor/voicemail.py: a voicemail is filed, and announced through the one MQTT bridge.

The notice goes out on the supervisor's long-lived :class:`presence.mqtt.PresenceBridge`
session (no client of its own per message): shown against a real Mosquitto, and against
a broker that is not there (the record is kept, the notice waits in the outbox and its
file, nothing hangs), and across a broker outage (issue 14: it arrives when the broker
is back).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path

import aiomqtt
import pytest

from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from switch.records.schema import RECORDS_FILE
from switch.records.voicemails import Voicemail
from switch.supervisor.voicemail import OUTBOX_FILE, VoicemailBox, payload
from tests.helpers.mosquitto import MosquittoBroker, mosquitto_broker
from tests.helpers.records import worker_report


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
    assert not box._tasks  # the sender stopped within publish_timeout
    assert (tmp_path / OUTBOX_FILE).read_text().count("\n") == 2  # kept for the next start


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


def persistent(broker: MosquittoBroker, workdir: Path) -> None:
    """Let the broker keep sessions across a restart (the listener's, not the switch's)."""
    text = broker.config.read_text().replace("persistence false", "persistence true")
    broker.config.write_text(text + f"persistence_location {workdir}/\nautosave_interval 1\n")


@pytest.mark.peer
@pytest.mark.slow
async def test_a_notice_during_a_broker_outage_arrives_when_it_is_back(tmp_path: Path) -> None:
    """Issue 14, item 9. Before: the notice was dropped after ``publish_timeout``."""
    broker = MosquittoBroker(tmp_path)
    persistent(broker, tmp_path)
    host, port = broker.address
    listener_id = f"listener-{os.getpid()}"
    topic = "rufweiche/v1/+/voicemail"
    try:
        broker.start()
        # A persistent session (clean_session false, QoS 1): the broker keeps what is
        # published for it while the listener reconnects after the restart.
        async with aiomqtt.Client(host, port, identifier=listener_id, clean_session=False) as c:
            await c.subscribe(topic, qos=1)
        hub = PresenceHub({})
        async with (
            PresenceBridge(
                hub, host, port, discovery=False, timeout=2, backoff_initial=0.2, backoff_max=1.0
            ) as bridge,
            VoicemailBox(
                tmp_path / RECORDS_FILE, bridge, publish_timeout=0.5, retry_initial=0.1
            ) as box,
        ):
            await asyncio.wait_for(bridge.connected.wait(), 5)
            broker.stop()  # SIGTERM: the broker is down (it saves the listener's session)
            async with asyncio.timeout(5):
                while bridge.connected.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            await box.add(worker_report(call_id="during-outage"), "masked")
            await asyncio.sleep(1.5)  # several tries, all failing
            assert box.sent == 0
            assert len(box.outbox.items) == 1
            saved = (tmp_path / OUTBOX_FILE).read_text()
            assert "during-outage" in saved  # persisted while it waits
            broker.start()
            back = time.monotonic()
            async with aiomqtt.Client(
                host, port, identifier=listener_id, clean_session=False
            ) as listener:
                await listener.subscribe(topic, qos=1)
                async with asyncio.timeout(10):
                    message = await anext(listener.messages)
                delay = time.monotonic() - back
            assert isinstance(message.payload, bytes)
            assert json.loads(message.payload)["call_id"] == "during-outage"
            # The listener may hear the notice before the box has its PUBACK (or, on a
            # loaded machine, before a retry after a PUBACK later than publish_timeout).
            async with asyncio.timeout(5):
                while box.sent == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert box.sent == 1
            assert not box.outbox.items
            assert not (tmp_path / OUTBOX_FILE).exists()
        print(f"notice delivered {delay:.2f} s after the broker came back")
    finally:
        broker.kill()


async def test_notices_left_at_stop_are_sent_at_the_next_start(tmp_path: Path) -> None:
    hub = PresenceHub({})
    async with (
        PresenceBridge(hub, "127.0.0.1", closed_port(), backoff_initial=0.05) as bridge,
        VoicemailBox(tmp_path / RECORDS_FILE, bridge, publish_timeout=0.2) as box,
    ):
        await box.add(worker_report(call_id="left"), "none")
    assert "left" in (tmp_path / OUTBOX_FILE).read_text()
    sent: list[tuple[str, bytes]] = []

    class Recorder:
        topics = bridge.topics

        async def publish(
            self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
        ) -> None:
            sent.append((topic, payload))

    async with VoicemailBox(tmp_path / RECORDS_FILE, Recorder()) as box:
        async with asyncio.timeout(2):
            while not sent:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    assert sent[0][0] == "rufweiche/v1/mueller/voicemail"
    assert json.loads(sent[0][1])["call_id"] == "left"
    assert not (tmp_path / OUTBOX_FILE).exists()


async def test_the_outbox_is_bounded(tmp_path: Path) -> None:
    hub = PresenceHub({})
    async with (
        PresenceBridge(hub, "127.0.0.1", closed_port(), backoff_initial=0.05) as bridge,
        VoicemailBox(tmp_path / RECORDS_FILE, bridge, publish_timeout=0.1, outbox_max=3) as box,
    ):
        for n in range(5):
            await box.add(worker_report(call_id=f"m{n}"), "none")
        assert [json.loads(b)["call_id"] for _, b in box.outbox.items] == ["m2", "m3", "m4"]
        assert box.outbox.dropped == 2
