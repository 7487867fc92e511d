"""Click to call end to end (issue 17): ``POST /api/v1/calls/dial`` against real peers.

``python -m switch run`` with the Kamailio edge; Jan's desk phone is a baresip registered
at the edge (it answers at once); the trunk is a SIPp UAS. The API rings Jan's phone
through the edge (his registered contact) first; once it answered, the worker calls the
customer through the trunk as the business (From and P-Asserted-Identity: the business's
number, as the trunk's default profile prescribes) and bridges the two. A premium number
is a 403 with a German reason and nothing reaches the trunk; the calls-per-hour limit is
a 403 and an ``outbound_limit`` audit line; no token is a 401, another business's
assistant a 403; every request is a ``click_to_call`` line in the audit log; the record
is an outbound call of the business.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switch.edge.credentials import Secrets, add_user, save_secrets
from tests.helpers.baresip import needs_baresip
from tests.helpers.desk import OTHER_PLAN, http, switch_users
from tests.helpers.edge import PASSWORD, baresip_phone, needs_kamailio
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp
from tests.helpers.switch import Switch

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    needs_kamailio,
    needs_baresip,
]
BUSINESS_E164 = "+49301234560"


def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "test.yaml").write_text(
        """
tenant: tischlerei-test
name: Tischlerei Test
numbers: ["+49 30 1234560"]
people:
  jan: {name: Jan, devices: {desk: "sip:alice@office"}}
outbound:
  allow: [national]
  calls_per_hour: 1
rules:
  - {name: jan, then: [{ring: jan.desk, timeout: 10s}]}
""",
        encoding="utf-8",
    )
    (folder / "other.yaml").write_text(OTHER_PLAN, encoding="utf-8")
    return folder


def post(url: str, token: str | None, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def audit(tmp_path: Path, event: str) -> list[dict[str, Any]]:
    path = tmp_path / "var" / "audit.jsonl"
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [e for e in entries if e["event"] == event]


async def until(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def office(
    tmp_path: Path, scenario: str = "uas_answer_bye.xml", **keys: Any
) -> tuple[dict[str, str], Sipp, Path]:
    """Alice's SIP password (and the trunk account's), the users' tokens, the trunk (a
    SIPp UAS running ``scenario``, bound) and the settings: the managed edge with no trunk
    source at 127.0.0.1 (jan's phone registers from there), ``keys`` (TRUNK: the trunk's
    address)."""
    secrets = tmp_path / "secrets.yaml"
    users = add_user(secrets, "alice", PASSWORD, realm="office")
    save_secrets(secrets, Secrets(realm=users.realm, users=users.users, trunks={"sipgate": "pw"}))
    tokens = switch_users(tmp_path)
    trunk = Sipp(tmp_path, "trunk", scenario, ["-m", "1", "-timeout", "60"])
    trunk.start()
    trunk.wait_bound()
    edge = {"secrets_file": str(secrets), "trunk_sources": []}
    keys = json.loads(json.dumps(keys).replace(TRUNK, trunk.address))
    settings = tmp_path / "settings.yaml"
    settings.write_text(json.dumps({"edge_mode": "managed", "edge": edge, **keys}))
    return tokens, trunk, settings


TRUNK = "@trunk@"


@contextlib.asynccontextmanager
async def switch_with_jan(
    tmp_path: Path, folder: Path, settings: Path
) -> AsyncIterator[tuple[Switch, Any]]:
    """``rufweiche run`` with jan's desk phone (baresip) registered at the edge."""
    switch = Switch(tmp_path, folder, "--settings", str(settings))
    phone = baresip_phone(tmp_path, switch.sip_port, "alice", PASSWORD)
    try:
        await asyncio.to_thread(switch.start)
        await phone.start()
        await until(lambda: "binding" in phone.output(), 15, "jan's phone registered")
        yield switch, phone
    finally:
        await phone.stop()
        await asyncio.to_thread(switch.stop)


def first(message: str, header: str) -> str:
    """The first ``header:`` line of a SIP message as SIPp logged it."""
    return next(line for line in message.splitlines() if line.startswith(f"{header}:"))


async def ended_record(switch: Switch, token: str, call_id: str) -> dict[str, Any]:
    """The call's record on /api/v1/calls once it has an outcome."""

    def ended() -> dict[str, Any] | None:
        calls = http(f"{switch.url}/api/v1/calls", token)["calls"]
        found = next((c for c in calls if c["call_id"] == call_id), None)
        return found if found and found.get("outcome") else None

    return dict(await until(ended, 15, f"the record of {call_id}"))


async def test_click_to_call_rings_jan_first_then_the_customer_as_the_business(
    tmp_path: Path,
) -> None:
    tokens, trunk, settings = office(tmp_path, trunk=TRUNK)
    with running(trunk):
        async with switch_with_jan(tmp_path, plans(tmp_path), settings) as (switch, phone):
            dial = f"{switch.url}/api/v1/calls/dial"
            call = {"ring": "jan.desk", "number": "030 5551234", "tenant": "tischlerei-test"}
            # nobody: 401; another business's assistant: 403; bad input: 400
            assert (await asyncio.to_thread(post, dial, None, call))[0] == 401
            status, body = await asyncio.to_thread(post, dial, tokens["susi"], call)
            assert status == 403, body
            status, body = await asyncio.to_thread(post, dial, tokens["otto"], {"ring": "jan"})
            assert status == 400
            assert "number" in body["error"]
            # premium: refused with the reason, in German; nothing rings
            premium = {**call, "number": "0900 1234567"}
            status, body = await asyncio.to_thread(post, dial, tokens["otto"], premium)
            assert status == 403, body
            assert body["error"] == (
                "Anruf nicht möglich: Premium-Nummern (0900, 0137, 118xx) sind für jan gesperrt"
            )
            # the real one: 202, jan's phone rings (and answers), then the trunk's INVITE
            status, body = await asyncio.to_thread(post, dial, tokens["otto"], call)
            assert status == 202, body
            assert body["status"] == "ringing"
            call_id = body["id"]
            code = await asyncio.to_thread(trunk.wait, 30)
            assert code == 0, trunk.diagnostics() + phone.output() + switch.output()[-4000:]
            (invite,) = trunk.received("INVITE")
            assert invite.startswith("INVITE sip:+49305551234@")
            business = re.escape(BUSINESS_E164)
            assert re.search(rf"^From: .*<sip:{business}@", invite, re.M), invite
            assert re.search(rf"^P-Asserted-Identity: <sip:{business}@", invite, re.M), invite
            assert "Call established" in phone.output()  # jan answered before the trunk rang
            # the limit (1 call per hour): 403, audited; still one INVITE at the trunk
            status, body = await asyncio.to_thread(post, dial, tokens["otto"], call)
            assert status == 403, body
            assert body["error"] == "Anruf nicht möglich: Grenze erreicht: 1 Anrufe pro Stunde"
            assert len(trunk.received("INVITE")) == 1
            hits = await until(lambda: audit(tmp_path, "outbound_limit"), 10, "limit audited")
            assert (hits[0]["who"], hits[0]["tenant"]) == ("jan", "tischlerei-test")
            requests = audit(tmp_path, "click_to_call")
            assert [(e["who"], e["status"]) for e in requests] == [
                ("susi", 403),
                ("otto", 403),
                ("otto", 202),
                ("otto", 403),
            ], requests
            assert requests[2]["call_id"] == call_id
            assert requests[2]["number"] == "030 5551234"
            row = await ended_record(switch, tokens["otto"], call_id)
            assert row["direction"] == "outbound"
            assert row["tenant"] == "tischlerei-test"
            assert row["presented"] == BUSINESS_E164
            assert row["outcome"] == "answered"
            assert row["called"] == "+49305551234"


PROFILE_PLAN = """
tenant: tischlerei-test
name: Tischlerei Test
numbers: ["+49 30 1234560"]
people:
  jan: {name: Jan, devices: {desk: "sip:alice@office"}}
  eva: {name: Eva, devices: {desk: "sip:eva@%s"}}
  ute: {name: Ute, devices: {desk: "sip:ute@%s"}}
outbound:
  allow: [national]
rules:
  - {name: jan, then: [{ring: jan.desk, timeout: 10s}]}
"""
SIPGATE_LIKE = {
    "name": "sipgate",
    "registrar": TRUNK,
    "domain": "sipgate.de",
    "username": "1234567e0",
    "registration": False,
    "keepalive": "none",
    "identity_header": "ppi",
    "number_format": "cc",
    "from_user": "1234567e0",
    "sources": ["192.0.2.1/32"],  # not 127.0.0.1: jan's phone registers from there
}


async def test_click_to_call_through_a_ppi_trunk_and_to_a_phone_that_declines(
    tmp_path: Path,
) -> None:
    """A trunk account whose profile wants P-Preferred-Identity (sipgate-like: From = the
    SIP-ID, PPI ``49…`` without plus, the provider's domain) gets exactly that from click
    to call; a phone that declines (486) leaves a record saying so in German, and nothing
    reaches the trunk for it. When Ute, who placed the call, hangs up, the BYE reaches the
    trunk through the edge (the trunk's scenario waits for it)."""
    tokens, trunk, settings = office(
        tmp_path, "uas_answer_rr.xml", trunks={"accounts": [SIPGATE_LIKE]}
    )
    eva = Sipp(tmp_path, "eva", "uas_busy.xml", ["-m", "1", "-timeout", "60"])
    # Ute answers, then hangs up after 3 s: the trunk's leg (answered 300 ms after its
    # INVITE) is up by then, so the switch ends it with a BYE, not a CANCEL.
    ute = Sipp(
        tmp_path, "ute", "uas_answer_hangup.xml", ["-m", "1", "-d", "3000", "-timeout", "60"]
    )
    folder = tmp_path / "plans"
    folder.mkdir()
    with running(trunk, eva.start(), ute.start()):
        eva.wait_bound()
        ute.wait_bound()
        plan = PROFILE_PLAN % (eva.address, ute.address)
        (folder / "test.yaml").write_text(plan, encoding="utf-8")
        async with switch_with_jan(tmp_path, folder, settings) as (switch, _phone):
            dial = f"{switch.url}/api/v1/calls/dial"
            # Eva's phone declines: 202 (it rang), then the record says why; no INVITE out
            declined = {"ring": "eva.desk", "number": "030 5551234", "tenant": "tischlerei-test"}
            status, body = await asyncio.to_thread(post, dial, tokens["otto"], declined)
            assert status == 202, body
            assert await asyncio.to_thread(eva.wait, 20) == 0, eva.diagnostics()
            row = await ended_record(switch, tokens["otto"], body["id"])
            assert (row["outcome"], row["sip_status"]) == ("cancelled", 486), row
            assert row["reason"] == "abgelehnt (besetzt)"
            assert trunk.received("INVITE") == []
            # Ute's phone answers: the trunk gets From = SIP-ID and PPI, as the profile says
            status, body = await asyncio.to_thread(
                post, dial, tokens["otto"], {**declined, "ring": "ute.desk"}
            )
            assert status == 202, body
            (invite,) = await until(lambda: trunk.received("INVITE"), 30, "the trunk's INVITE")
            assert invite.startswith("INVITE sip:49305551234@"), invite
            assert re.search(r"^From: .*<sip:1234567e0@sipgate\.de>", invite, re.M), invite
            ppi = r"^P-Preferred-Identity: <sip:49301234560@sipgate\.de>"
            assert re.search(ppi, invite, re.M), invite
            assert not re.search(r"^P-Asserted-Identity:", invite, re.M), invite
            assert "X-Rufweiche-Trunk" not in invite  # the edge's own header stays inside
            # Ute hangs up: the switch's BYE reaches the trunk (which answers it with 200)
            assert await asyncio.to_thread(ute.wait, 20) == 0, ute.diagnostics()
            code = await asyncio.to_thread(trunk.wait, 20)
            assert code == 0, trunk.diagnostics() + switch.output()[-4000:]
            # through the edge (its Via on top; the edge record-routed the INVITE), perhaps
            # retransmitted (a worker busy for more than T1), always the one transaction
            byes = trunk.received("BYE")
            assert byes, trunk.message_text()
            edge = first(invite, "Via").split(";")[0]  # the edge's: it relayed the INVITE
            assert all(first(bye, "Via").split(";")[0] == edge for bye in byes), byes
            assert len({first(bye, "CSeq") for bye in byes}) == 1, byes
            row = await ended_record(switch, tokens["otto"], body["id"])
            assert (row["outcome"], row["hung_up_by"]) == ("answered", "caller"), row
