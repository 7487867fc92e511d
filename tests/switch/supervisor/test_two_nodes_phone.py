"""Two FULL nodes (``python -m switch run`` each: supervisor, Kamailio edge, pjsua2 worker)
share the edges' registrations in PostgreSQL (``edge.shared_db_url``). A phone (baresip)
registers through node A's edge; a SIPp caller calls the business through node B's edge;
B's worker applies the plan (``ring jan.desk`` = ``sip:alice@office``), B's edge finds
A's binding in the shared ``location`` table, and the phone rings and answers.
(With SIPp standing in for B's worker: tests/switch/edge/test_shared_registrations.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from switch.edge.credentials import add_user
from tests.helpers.baresip import needs_baresip
from tests.helpers.edge import PASSWORD, baresip_phone, needs_db_postgres, needs_kamailio
from tests.helpers.pg import fresh_database, location_contacts
from tests.helpers.ports import LOOPBACK
from tests.helpers.sipp import BUSINESS_E164, Sipp
from tests.helpers.switch import Switch, plan_text, write

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    needs_kamailio,
    needs_baresip,
    needs_db_postgres,
]


def node(
    tmp_path: Path, plans: Path, name: str, url: str, secrets: Path, **edge_extra: object
) -> Switch:
    home = tmp_path / name
    home.mkdir()
    settings = home / "settings.yaml"
    edge = {"secrets_file": str(secrets), "shared_db_url": url, **edge_extra}
    settings.write_text(json.dumps({"edge_mode": "managed", "edge": edge}))
    return Switch(home, plans, "--settings", str(settings))


async def test_a_phone_registered_via_node_a_gets_the_call_routed_by_node_b(
    tmp_path: Path,
) -> None:
    async with fresh_database() as url:
        secrets = tmp_path / "secrets.yaml"  # the shared settings directory's secrets file
        add_user(secrets, "alice", PASSWORD, realm="office")
        plans = tmp_path / "plans"
        plans.mkdir()
        write(plans / "a.yaml", plan_text("sip:alice@office"))
        a = node(tmp_path, plans, "node-a", url, secrets)
        # The caller is a trunk of node B's (the provider delivers the business's calls)
        b = node(tmp_path, plans, "node-b", url, secrets, trunk_sources=["127.0.0.1/32"])
        phone = baresip_phone(tmp_path, a.sip_port, "alice", PASSWORD)
        caller = Sipp(
            tmp_path,
            "caller",
            "uac_via_edge.xml",
            [f"{LOOPBACK}:{b.sip_port}", "-s", BUSINESS_E164, "-key", "caller",
             "+491715550199", "-m", "1", "-d", "500", "-timeout", "40"],
        )  # fmt: skip
        started: list[Switch] = []
        try:
            for n in (a, b):
                await asyncio.to_thread(n.start)
                started.append(n)
            await phone.start()
            for _ in range(100):
                if await location_contacts(url, "alice"):
                    break
                await asyncio.sleep(0.1)
            assert await location_contacts(url, "alice"), phone.output() + a.output()[-3000:]
            caller.start()
            try:
                code = await asyncio.to_thread(caller.wait, 30)
            finally:
                caller.stop()
            assert code == 0, caller.diagnostics() + phone.output() + b.output()[-4000:]
            assert "Call established" in phone.output(), phone.output()
            # B's worker routed it (B's record, answered); A saw no call
            calls_b = await asyncio.to_thread(b.calls)
            assert [c["outcome"] for c in calls_b] == ["answered"], calls_b
            assert await asyncio.to_thread(a.calls) == []
        finally:
            await phone.stop()
            for n in started:
                await asyncio.to_thread(n.stop)
