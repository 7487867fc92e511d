"""End to end (issue 18): ``*21*01701234567#`` dialled by a SIPp phone (jan's desk device)
through the running switch forwards jan's calls: the next SIPp call for jan rings a SIPp
"trunk" with that number; ``#21#`` restores jan's desk; the owner's API refuses 0900; the
forwarding is audited and survives in the data directory (``explain --data-dir``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from switch import cli
from tests.helpers.desk import service_plan
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp, caller, dial_code
from tests.helpers.switch import Switch

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(100)]
PERSON = "/api/v1/tenants/tischlerei-test/people/jan/forwarding"


def plan_text(jan: str) -> str:
    rule = "  - {name: Jan, then: [{ring: [jan.desk], timeout: 10s}]}\n"
    return service_plan(None, jan=f'desk: "sip:jan@{jan}"', rules=rule)


def call_jan(tmp_path: Path, switch: Switch, name: str, *peers: Sipp) -> Sipp:
    call = caller(tmp_path, switch.sip_port, caller="+4922155501234", name=name, hold_ms=300)
    with running(*(p.start() for p in peers), call.start()):
        assert call.wait(20) == 0, call.diagnostics()
    return call


def put(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_star_21_forwards_jans_calls_to_the_trunk_and_hash_21_restores(
    tmp_path: Path, plans: Path, make_switch: Any
) -> None:
    jan_port = free_port()
    trunk = Sipp(tmp_path, "trunk", "uas_answer.xml", ["-m", "1", "-timeout", "20"])
    (plans / "test.yaml").write_text(plan_text(f"{LOOPBACK}:{jan_port}"), encoding="utf-8")
    settings = tmp_path / "settings.yaml"
    settings.write_text(f'trunk: "{trunk.address}"\n', encoding="utf-8")
    switch = make_switch(plans, "--settings", str(settings), bare=True)
    assert switch.get(PERSON)["number"] is None

    dial_code(tmp_path, switch.sip_port, "*21*01701234567#", name="set", phone_port=jan_port)
    switch.wait_until(lambda: switch.get(PERSON)["number"] == "+491701234567", 5, "forwarded")
    call_jan(tmp_path, switch, "caller1", trunk)
    invites = trunk.received("INVITE")
    assert invites, "the trunk did not ring"
    assert invites[0].startswith("INVITE sip:+491701234567@"), invites[0][:80]
    record = switch.wait_until(
        lambda: [c for c in switch.calls() if c["outcome"] == "answered"], 10, "record"
    )[0]
    assert record["rule"] == "Jan"

    # explain reads what is in force from the data directory
    runner = CliRunner()
    args = ["explain", str(plans / "test.yaml"), "--to", "+49 30 1234560"]
    out = runner.invoke(cli.main, [*args, "--data-dir", str(tmp_path / "var")]).output
    assert "Rufumleitung: jan → +49 170 1234567" in out

    dial_code(tmp_path, switch.sip_port, "#21#", name="clear", phone_port=jan_port)
    switch.wait_until(lambda: switch.get(PERSON)["number"] is None, 5, "cleared")
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", "1", "-timeout", "20"], port=jan_port)
    call_jan(tmp_path, switch, "caller2", desk)
    assert desk.received("INVITE"), "jan's desk did not ring after #21#"
    assert len(trunk.received("INVITE")) == 1

    # the owner's page: the same, and 0900 is refused
    status, body = put(switch.url + PERSON, {"number": "0900 1234567"})
    assert status == 403, body
    status, body = put(switch.url + PERSON, {"number": "030 9876543"})
    assert (status, body["number"]) == (200, "+49309876543")
    audit = (tmp_path / "var" / "audit.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line) for line in audit.splitlines()]
    changes = [
        (e["event"], e["from"], e.get("number")) for e in events if "forwarding" in e["event"]
    ]
    assert changes == [
        ("forwarding_set", "phone", "+491701234567"),
        ("forwarding_cleared", "phone", None),
        ("forwarding_set", "web", "+49309876543"),
    ]
