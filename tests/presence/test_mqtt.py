"""The MQTT bridge against a real Mosquitto (a private broker per test, tests/helpers/mosquitto.py).

Commands are sent with ``mosquitto_pub`` (another client implementation than ours);
states are read by fresh aiomqtt subscribers, so a retained message is what they see.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import cast

import aiomqtt
import pytest

from presence.backoff import backoff_delay
from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from presence.topics import Topics, decode_state
from rules.presence import PresenceState as S
from tests.helpers.mosquitto import MosquittoBroker

pytestmark = pytest.mark.peer

DIRECTORY = {"acme": {"anna", "bert"}, "beta": {"carl"}}
TOPICS = Topics()


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll: the conditions live in other tasks and a peer process, not in one Event."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def retained(
    broker: MosquittoBroker, topic_filter: str, quiet: float = 0.3
) -> dict[str, bytes]:
    """Everything a brand-new subscriber gets for ``topic_filter`` (the retained messages)."""
    found: dict[str, bytes] = {}
    async with aiomqtt.Client(broker.host, broker.port, timeout=5) as client:
        await client.subscribe(topic_filter, qos=1)
        while True:
            try:
                async with asyncio.timeout(quiet):
                    message = await anext(client.messages)
            except TimeoutError:
                return found
            assert message.retain, f"{message.topic} arrived live, not retained"
            assert isinstance(message.payload, bytes)
            found[str(message.topic)] = message.payload


async def mosquitto_pub(
    broker: MosquittoBroker, topic: str, payload: str, *, retain: bool = False
) -> None:
    args = ["-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", topic, "-m", payload]
    proc = await asyncio.create_subprocess_exec("mosquitto_pub", *args, *(["-r"] if retain else []))
    assert await asyncio.wait_for(proc.wait(), 5) == 0


def cut_connection(bridge: PresenceBridge) -> None:
    """Shut the bridge's TCP socket under it: the broker sees the client vanish, no DISCONNECT."""
    assert bridge.client is not None
    sock = cast(socket.socket, bridge.client._client.socket())
    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
async def bridge(mosquitto: MosquittoBroker) -> AsyncIterator[PresenceBridge]:
    hub = PresenceHub(DIRECTORY)
    async with PresenceBridge(
        hub,
        mosquitto.host,
        mosquitto.port,
        backoff_initial=0.05,
        backoff_max=0.3,
        timeout=2,
        stop_timeout=2,
    ) as b:
        await asyncio.wait_for(b.connected.wait(), 5)
        yield b


def hub_of(bridge: PresenceBridge) -> PresenceHub:
    return bridge._hub


async def test_command_changes_hub_and_state_is_retained(
    mosquitto: MosquittoBroker, bridge: PresenceBridge
) -> None:
    hub = hub_of(bridge)
    until = (datetime.now(UTC) + timedelta(hours=4)).replace(microsecond=0)
    command = {"state": "away", "note": "Baustelle Nord", "until": until.isoformat()}
    await mosquitto_pub(mosquitto, TOPICS.command("acme", "anna"), json.dumps(command))
    await eventually(lambda: hub.snapshot("acme")["anna"] == S.AWAY)
    assert bridge.commands_applied == 1

    await eventually(lambda: bridge.settled)
    states = await retained(mosquitto, "rufweiche/v1/+/person/+/presence")
    assert set(states) == {TOPICS.presence(*key) for key in hub.keys()}  # noqa: SIM118
    anna = decode_state(states[TOPICS.presence("acme", "anna")])
    assert (anna.state, anna.note, anna.until, anna.source) == (
        S.AWAY,
        "Baustelle Nord",
        until,
        "mqtt",
    )
    assert decode_state(states[TOPICS.presence("beta", "carl")]).state == S.AVAILABLE
    assert await retained(mosquitto, TOPICS.status) == {TOPICS.status: b"online"}
    config = await retained(mosquitto, "homeassistant/sensor/+/config")
    assert json.loads(config["homeassistant/sensor/rufweiche_acme_anna/config"])["state_topic"] == (
        TOPICS.presence("acme", "anna")
    )

    # a call shows up as busy in the retained state
    hub.call_started("acme", "anna")
    await eventually(lambda: bridge.settled)
    states = await retained(mosquitto, TOPICS.presence("acme", "anna"))
    assert decode_state(states[TOPICS.presence("acme", "anna")]).state == S.BUSY

    # a person who leaves the dial plan disappears from the broker
    hub.replace_directory({"acme": {"anna"}})
    await eventually(lambda: bridge.settled)
    assert set(await retained(mosquitto, "rufweiche/v1/+/person/+/presence")) == {
        TOPICS.presence("acme", "anna")
    }
    assert set(await retained(mosquitto, "homeassistant/#")) == {
        "homeassistant/sensor/rufweiche_acme_anna/config"
    }


async def test_until_from_a_command_passes_and_is_published(mosquitto: MosquittoBroker) -> None:
    hub = PresenceHub(DIRECTORY)
    async with hub, PresenceBridge(hub, mosquitto.host, mosquitto.port) as bridge:
        await eventually(lambda: bridge.settled)
        until = datetime.now(UTC) + timedelta(seconds=0.5)
        command = json.dumps({"state": "dnd", "note": "Termin", "until": until.isoformat()})
        await mosquitto_pub(mosquitto, TOPICS.command("beta", "carl"), command)
        await eventually(lambda: hub.record("beta", "carl").state == S.DND)
        # nobody touches the hub: its expiry task brings carl back, the bridge publishes it
        await eventually(lambda: hub._book.get(("beta", "carl")).state == S.AVAILABLE)  # type: ignore[union-attr]
        await eventually(lambda: bridge.settled)
        states = await retained(mosquitto, TOPICS.presence("beta", "carl"))
    carl = decode_state(states[TOPICS.presence("beta", "carl")])
    assert (carl.state, carl.source, carl.note, carl.since) == (
        S.AVAILABLE,
        "schedule",
        None,
        until,
    )


async def test_bad_commands_are_ignored(mosquitto: MosquittoBroker, bridge: PresenceBridge) -> None:
    hub = hub_of(bridge)
    await mosquitto_pub(mosquitto, TOPICS.command("acme", "anna"), "{not json")
    await mosquitto_pub(mosquitto, TOPICS.command("acme", "anna"), '{"state": "sleeping"}')
    await mosquitto_pub(mosquitto, TOPICS.command("acme", "zoe"), "away")
    await mosquitto_pub(mosquitto, TOPICS.command("nope", "anna"), "away")
    await mosquitto_pub(mosquitto, TOPICS.command("acme", "bert"), "offline")  # the good one
    await eventually(lambda: bridge.commands_applied == 1)
    assert bridge.commands_ignored == 4
    assert dict(hub.snapshot("acme")) == {"anna": S.AVAILABLE, "bert": S.OFFLINE}
    assert bridge.connected.is_set()  # none of it hurt the session

    # A retained command arrives live once (applied) and then again, flagged retained, on
    # every resubscribe: that replay is ignored, or it would undo later changes.
    await mosquitto_pub(mosquitto, TOPICS.command("beta", "carl"), "dnd", retain=True)
    await eventually(lambda: hub.snapshot("beta")["carl"] == S.DND)
    hub.set("beta", "carl", "available", source="web")
    cut_connection(bridge)
    await eventually(lambda: bridge.connections == 2 and bridge.commands_ignored == 5)
    assert hub.snapshot("beta")["carl"] == S.AVAILABLE


async def test_broker_dies_and_returns(mosquitto: MosquittoBroker, bridge: PresenceBridge) -> None:
    hub = hub_of(bridge)
    mosquitto.kill()
    await eventually(lambda: not bridge.connected.is_set())
    # the hub works on without the broker
    hub.set("acme", "bert", "dnd", source="web", note="while the broker was down")
    assert hub.snapshot("acme")["bert"] == S.DND
    await asyncio.sleep(0.5)  # a few failed reconnects (backoff 0.05 .. 0.3 s)
    assert bridge.connections == 1

    mosquitto.start()  # same port, empty retained store (persistence false)
    await eventually(lambda: bridge.connections == 2)
    await eventually(lambda: bridge.settled)
    states = await retained(mosquitto, "rufweiche/v1/+/person/+/presence")
    assert len(states) == 3  # all republished, not just the change
    bert = decode_state(states[TOPICS.presence("acme", "bert")])
    assert (bert.state, bert.note) == (S.DND, "while the broker was down")
    assert await retained(mosquitto, TOPICS.status) == {TOPICS.status: b"online"}

    # and the command subscription is back
    await mosquitto_pub(mosquitto, TOPICS.command("acme", "anna"), "away")
    await eventually(lambda: hub.snapshot("acme")["anna"] == S.AWAY)


async def test_last_will_on_lost_connection_and_offline_on_clean_stop(
    mosquitto: MosquittoBroker, bridge: PresenceBridge
) -> None:
    seen: list[bytes] = []
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, timeout=5) as watcher:
        await watcher.subscribe(TOPICS.status, qos=1)

        async def collect() -> None:
            async for message in watcher.messages:
                assert isinstance(message.payload, bytes)
                seen.append(message.payload)

        collector = asyncio.create_task(collect())
        try:
            await eventually(lambda: seen == [b"online"])  # the retained one
            # Cut the bridge's TCP connection under it: no DISCONNECT reaches the broker.
            cut_connection(bridge)
            await eventually(lambda: seen[:3] == [b"online", b"offline", b"online"])
            assert bridge.connections == 2

            await bridge.stop()
            await eventually(lambda: seen[-1:] == [b"offline"])
        finally:
            collector.cancel()
            with pytest.raises(asyncio.CancelledError):
                await collector
    assert await retained(mosquitto, TOPICS.status) == {TOPICS.status: b"offline"}
    # mosquitto's own account: first a lost connection, at the end a clean DISCONNECT
    await eventually(lambda: f"Client {bridge.client_id} disconnected." in mosquitto.log_text())
    assert f"Client {bridge.client_id} closed its connection." in mosquitto.log_text()


async def test_stop_without_broker_does_not_hang(mosquitto: MosquittoBroker) -> None:
    mosquitto.kill()
    hub = PresenceHub(DIRECTORY)
    bridge = PresenceBridge(
        hub, mosquitto.host, mosquitto.port, backoff_initial=5, backoff_max=5, stop_timeout=1
    )
    async with asyncio.timeout(2):
        async with bridge:
            await asyncio.sleep(0.2)  # first attempt failed, now in a 2.5-5 s backoff
            hub.set("acme", "anna", "away", source="phone")
    assert bridge.connections == 0
    assert hub.snapshot("acme")["anna"] == S.AWAY


VICTIM = """
import asyncio, sys
from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge

async def main() -> None:
    hub = PresenceHub({"acme": {"anna"}})
    async with PresenceBridge(hub, sys.argv[1], int(sys.argv[2]), client_id=sys.argv[3]) as b:
        await b.connected.wait()
        print("connected", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_last_will_when_the_process_is_killed(mosquitto: MosquittoBroker) -> None:
    client_id = "rufweiche-victim"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        VICTIM,
        mosquitto.host,
        str(mosquitto.port),
        client_id,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"connected\n"
        assert await retained(mosquitto, TOPICS.status) == {TOPICS.status: b"online"}
        proc.kill()  # SIGKILL: no chance to say goodbye
        await proc.wait()
        await eventually(
            lambda: f"Client {client_id} closed its connection." in mosquitto.log_text()
        )
        assert await retained(mosquitto, TOPICS.status) == {TOPICS.status: b"offline"}
        # the states it published stay retained for whoever subscribes later
        anna = await retained(mosquitto, TOPICS.presence("acme", "anna"))
        assert decode_state(anna[TOPICS.presence("acme", "anna")]).state == S.AVAILABLE
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ids_that_cannot_be_topics_are_left_out(
    mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    hub = PresenceHub({"acme": {"anna", "a/b"}})
    async with PresenceBridge(hub, mosquitto.host, mosquitto.port, discovery=False) as bridge:
        await eventually(lambda: bridge.settled)
        hub.set("acme", "a/b", "away", source="web")  # still works in the hub
        await eventually(lambda: bridge.settled)
    assert set(await retained(mosquitto, "#")) == {
        TOPICS.status,
        TOPICS.presence("acme", "anna"),
    }
    assert caplog.text.count("person id cannot be an MQTT topic level") == 1  # logged once


async def test_stop_with_a_hung_broker_is_bounded(mosquitto: MosquittoBroker) -> None:
    hub = PresenceHub(DIRECTORY)
    bridge = PresenceBridge(hub, mosquitto.host, mosquitto.port, timeout=0.5, stop_timeout=0.5)
    async with bridge:
        await eventually(lambda: bridge.settled)
        mosquitto.freeze()  # TCP stays up, nothing is acknowledged any more
        try:
            hub.set("acme", "anna", "away", source="phone")
            loop = asyncio.get_running_loop()
            started = loop.time()
            await bridge.stop()  # "offline" gets no PUBACK: cancelled after stop_timeout
            assert loop.time() - started < 0.5 + 0.5 + 1.5
        finally:
            mosquitto.thaw()
    assert hub.snapshot("acme")["anna"] == S.AWAY


async def test_publish_sends_an_event_on_the_bridges_session(
    mosquitto: MosquittoBroker, bridge: PresenceBridge
) -> None:
    """Others (the voicemail box) publish through the bridge: no connection of their own,
    and an event published while the session is being re-made still goes out."""
    topic = TOPICS.event("acme", "voicemail")
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, timeout=5) as listener:
        await listener.subscribe(topic, qos=1)
        await bridge.publish(topic, b'{"call_id": "one"}')
        cut_connection(bridge)
        await eventually(lambda: not bridge.connected.is_set())
        async with asyncio.timeout(5):
            await bridge.publish(topic, b'{"call_id": "two"}')  # waits for the next session
        got: list[object] = []
        async with asyncio.timeout(5):
            while len(got) < 2:
                message = await anext(listener.messages)
                assert not message.retain
                got.append(message.payload)
    assert got == [b'{"call_id": "one"}', b'{"call_id": "two"}']
    assert bridge.connections == 2


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff_delay(n, 0.5, 10, rng=lambda: 1.0) for n in range(7)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]
    assert backoff_delay(3, 0.5, 10, rng=lambda: 0.0) == 2.0
    assert backoff_delay(10_000, 0.5, 10, rng=lambda: 0.5) == 7.5


async def test_the_day_night_override_topic(
    mosquitto: MosquittoBroker, bridge: PresenceBridge
) -> None:
    """Issue 18: ``…/person/<owner>/override/set`` ``service`` sends his calls to the service
    (his presence away, published as presence like any change), ``normal`` brings them back."""
    hub = hub_of(bridge)
    topic = TOPICS.override("acme", "anna")
    assert topic == "rufweiche/v1/acme/person/anna/override/set"
    await mosquitto_pub(mosquitto, topic, "service")
    await eventually(lambda: hub.snapshot("acme")["anna"] == S.AWAY)
    await eventually(lambda: bridge.settled)
    states = await retained(mosquitto, TOPICS.presence("acme", "anna"))
    assert decode_state(states[TOPICS.presence("acme", "anna")]).state == S.AWAY
    await mosquitto_pub(mosquitto, topic, json.dumps({"override": "normal"}))
    await eventually(lambda: hub.snapshot("acme")["anna"] == S.AVAILABLE)
    await mosquitto_pub(mosquitto, topic, "sideways")
    await eventually(lambda: bridge.commands_ignored == 1)
    assert bridge.commands_applied == 2
