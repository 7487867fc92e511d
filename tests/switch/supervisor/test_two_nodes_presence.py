"""Presence shared by two full nodes (``python -m switch run`` each) through one test-owned
Mosquitto (``mqtt.share_presence``): Jan sets "away" on node A's HTTP API; node B routes
his next call (a real SIPp call into node B) by the away rule, within a second of the change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mosquitto import MosquittoBroker, mosquitto_broker
from tests.helpers.pg import DSN
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.sipp import BUSINESS, BUSINESS_E164, Sipp
from tests.helpers.switch import Switch, write

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    (tmp_path / "mqtt").mkdir()
    with mosquitto_broker(tmp_path / "mqtt") as broker:
        yield broker


def plan(jan: str, eva: str) -> str:
    return f"""
tenant: test-tenant
name: Tischlerei Test
numbers: ["{BUSINESS}"]
people:
  jan: {{name: Jan, devices: {{desk: "{jan}"}}}}
  eva: {{name: Eva, devices: {{desk: "{eva}"}}}}
rules:
  - name: jan away
    when: {{presence: {{jan: away}}}}
    then:
      - {{ring: [eva.desk], timeout: 10s}}
  - name: ring jan
    then:
      - {{ring: [jan.desk], timeout: 10s}}
"""


def node(tmp_path: Path, plans: Path, broker: MosquittoBroker, name: str, schema: str) -> Switch:
    home = tmp_path / name
    home.mkdir()
    settings = home / "settings.yaml"
    settings.write_text(
        f"records: {{backend: postgresql, dsn: '{DSN}', schema: {schema}, node: {name}}}\n"
        f"mqtt: {{broker: '{broker.host}:{broker.port}', share_presence: true,"
        " home_assistant_discovery: false}\n"
        # the caller stands for the trunk (nothing is trusted by default, issue 14)
        'edge: {trunk_sources: ["127.0.0.1/32"]}\n'
    )
    switch = Switch(home, plans, "--settings", str(settings))
    switch.cmd.remove("--no-mqtt")
    return switch


def connected(switch: Switch) -> bool:
    return bool(switch.health()["broker_connected"])


def put(switch: Switch, path: str, body: dict[str, Any]) -> None:
    status, _ = switch.send_json("PUT", path, body)
    assert status == 200


def test_away_set_on_node_a_routes_the_call_on_node_b(
    tmp_path: Path, mosquitto: MosquittoBroker, pg_schema: str
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    jan = Sipp(tmp_path, "jan", "uas_answer.xml", ["-m", "1", "-timeout", "30"])
    eva = Sipp(tmp_path, "eva", "uas_answer.xml", ["-m", "1", "-timeout", "30"])
    write(plans / "t.yaml", plan(f"sip:jan@{jan.address}", f"sip:eva@{eva.address}"))
    a = node(tmp_path, plans, mosquitto, "node-a", pg_schema)
    b = node(tmp_path, plans, mosquitto, "node-b", pg_schema)
    started: list[Switch] = []
    person = "/api/v1/tenants/test-tenant/people/jan/presence"
    try:
        started += [a.start(), b.start()]
        for n in (a, b):
            n.wait_until(partial(connected, n), 10, "MQTT connected")
        assert b.get(person)["state"] == "available"
        put(a, person, {"state": "away", "note": "Termin"})
        changed = time.monotonic()
        b.wait_until(lambda: b.get(person)["state"] == "away", 5, "away on node B")
        took = time.monotonic() - changed
        print(f"node B saw node A's change after {took * 1000:.0f} ms (HTTP polling included)")
        call = Sipp(
            tmp_path,
            "caller",
            "uac_via_edge.xml",  # the node's edge record-routes
            [
                *(f"{LOOPBACK}:{b.sip_port}", "-s", BUSINESS_E164, "-key", "caller"),
                *("+491715550100", "-m", "1", "-d", "200", "-timeout", "30"),
            ],
        )
        with running(eva.start(), call.start()):
            assert call.wait(20) == 0, call.diagnostics() + b.output()
        assert eva.received("INVITE"), "node B routed by Jan's away, set on node A"
        record = b.wait_until(
            lambda: [c for c in b.calls() if c["outcome"] == "answered"], 10, "record"
        )[0]
        assert (record["rule"], record["node"]) == ("jan away", "node-b")
        assert b.get(person)["note"] == "Termin"
        assert took < 1.0, f"node B saw the change after {took:.2f} s"
    finally:
        for n in started:
            if n.proc is not None and n.proc.poll() is None:
                n.stop()
