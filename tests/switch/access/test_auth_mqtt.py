"""The Mosquitto password and ACL files of `rufweiche users mqtt-files`, on a test-owned
Mosquitto 2.0: a device of tenant A may set only its own presence and read only A's
topics; the switch's own user may do everything; the switch's bridge works with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from click.testing import CliRunner

from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from switch.cli import main as cli
from tests.helpers.mosquitto import MosquittoBroker

pytestmark = pytest.mark.peer
SET = "rufweiche/v1/{}/person/{}/presence/set"
STATE = "rufweiche/v1/{}/person/{}/presence"


@dataclass
class Broker:
    host: str
    port: int
    switch_password: str
    devices: dict[str, str]  # MQTT user -> password


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    runner = CliRunner()
    users = ["users", "--users-file", str(tmp_path / "users.yaml")]
    devices: dict[str, str] = {}
    for tenant, person in (("mueller", "otto"), ("schmidt", "sven")):
        result = runner.invoke(cli, [*users, "mqtt-device", tenant, person])
        assert result.exit_code == 0, result.output
        _, _, name, _, password = result.output.split("\n")[0].split()
        devices[name] = password
    out = tmp_path / "mqtt"
    result = runner.invoke(cli, [*users, "mqtt-files", "--out", str(out)])
    assert result.exit_code == 0, result.output
    mosquitto = MosquittoBroker(tmp_path)
    mosquitto.config.write_text(
        # As root, Mosquitto drops to user "mosquitto" before it reads the files, which
        # cannot enter pytest's private tmp directory; a real install chowns the files.
        "user root\n"
        f"listener {mosquitto.port} {mosquitto.host}\n"
        "allow_anonymous false\n"
        f"password_file {out / 'passwd'}\n"
        f"acl_file {out / 'acl'}\n"
        "persistence false\nlog_dest stderr\n"
    )
    try:
        mosquitto.start()
        yield Broker(
            mosquitto.host,
            mosquitto.port,
            (out / "switch.password").read_text().strip(),
            devices,
        )
    finally:
        mosquitto.kill()


def as_user(b: Broker, user: str, password: str | None = None) -> aiomqtt.Client:
    secret = b.switch_password if user == "rufweiche" else b.devices[user]
    return aiomqtt.Client(
        b.host, b.port, username=user, password=password or secret, timeout=5, identifier=user
    )


async def next_message(client: aiomqtt.Client, wait: float = 3.0) -> aiomqtt.Message:
    async with asyncio.timeout(wait):
        return await anext(client.messages)


async def test_a_device_sets_only_its_own_presence(broker: Broker) -> None:
    async with as_user(broker, "rufweiche") as switch, as_user(broker, "mueller.otto") as dev:
        await switch.subscribe("rufweiche/v1/+/person/+/presence/set", qos=1)
        # QoS 1: the broker acknowledges each publish, so all three reached it in order.
        await dev.publish(SET.format("schmidt", "sven"), b'{"state":"away"}', qos=1)
        await dev.publish(SET.format("mueller", "bob"), b'{"state":"away"}', qos=1)
        await dev.publish(SET.format("mueller", "otto"), b'{"state":"dnd"}', qos=1)
        first = await next_message(switch)
        # Messages of one client arrive in order: had the broker passed either forbidden
        # command, it would have arrived before this one.
        assert str(first.topic) == SET.format("mueller", "otto")
        assert first.payload == b'{"state":"dnd"}'
        with pytest.raises(TimeoutError):
            await next_message(switch, 0.3)


async def test_a_device_reads_only_its_tenant(broker: Broker) -> None:
    async with as_user(broker, "rufweiche") as switch, as_user(broker, "mueller.otto") as dev:
        await dev.subscribe("rufweiche/v1/#", qos=1)
        await switch.publish(STATE.format("schmidt", "sven"), b'{"state":"away"}', qos=1)
        await switch.publish(STATE.format("mueller", "bob"), b'{"state":"away"}', qos=1)
        first = await next_message(dev)
        assert str(first.topic) == STATE.format("mueller", "bob")
        # nor may it write state (only the switch publishes state)
        await dev.publish(STATE.format("mueller", "otto"), b'{"state":"dnd"}', qos=1)
        with pytest.raises(TimeoutError):
            await next_message(dev, 0.3)


async def test_wrong_password_and_anonymous_are_refused(broker: Broker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with as_user(broker, "mueller.otto", password="not-the-password"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, broker.port, timeout=5):
            pass


async def test_bridge_with_the_switch_user_applies_only_allowed_commands(broker: Broker) -> None:
    hub = PresenceHub({"mueller": {"otto", "bob"}, "schmidt": {"sven"}})
    async with PresenceBridge(
        hub, broker.host, broker.port, username="rufweiche", password=broker.switch_password
    ) as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 5)
        async with as_user(broker, "mueller.otto") as dev:
            await dev.publish(SET.format("schmidt", "sven"), b'{"state":"away"}', qos=1)
            await dev.publish(SET.format("mueller", "otto"), b'{"state":"away"}', qos=1)
            async with asyncio.timeout(5):
                while hub.record("mueller", "otto").state.value != "away":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        assert hub.record("schmidt", "sven").state.value == "available"
