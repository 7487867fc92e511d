"""People's phones register with the edge (digest auth, HA1 from the secrets file), and a
worker reaches a registered phone through the edge's location lookup.

The phone is baresip (PEERS.md §1) with auto-answer; the worker is a SIPp UAC sending from
an address in the dispatcher list, calling ``sip:alice@office``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from switch.edge import Edge
from switch.edge.credentials import add_user
from tests.helpers.baresip import needs_baresip
from tests.helpers.edge import (
    PASSWORD,
    EdgeFactory,
    Starter,
    baresip_phone,
    needs_kamailio,
    sipp_caller,
)
from tests.helpers.ports import free_port
from tests.helpers.rawsip import sip_request

pytestmark = [
    pytest.mark.peer,
    needs_kamailio,
    needs_baresip,
]


def bindings(edge: Edge, user: str) -> list[str]:
    with sqlite3.connect(edge.paths.db) as db:
        rows = db.execute("SELECT contact FROM location WHERE username = ?", (user,)).fetchall()
    return [r[0] for r in rows]


async def wait_for(predicate: object, seconds: float) -> bool:
    assert callable(predicate)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_wrong_password_gets_401_and_no_binding(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", PASSWORD, realm="office")
    edge = await start_edge(secrets_file=secrets)
    address = (edge.settings.listen_host, edge.settings.listen_port)
    challenge = await asyncio.to_thread(
        sip_request,
        address,
        "REGISTER",
        f"sip:{address[0]}:{address[1]}",
        from_uri=f"sip:alice@{address[0]}",
    )
    assert challenge is not None
    assert challenge.status == 401
    assert 'realm="office"' in challenge.text
    phone = await start(baresip_phone(tmp_path, address[1], "alice", "wrong"))
    assert await wait_for(lambda: "401 Unauthorized" in phone.output(), 5), phone.output()
    await asyncio.sleep(0.5)
    assert bindings(edge, "alice") == []


async def test_phone_registers_and_a_worker_reaches_it(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", PASSWORD, realm="office")
    sender = free_port(tcp=True)
    edge = await start_edge(
        secrets_file=secrets, workers=[{"uri": f"sip:127.0.0.1:{sender}", "maxload": 4}]
    )
    port = edge.settings.listen_port
    phone = await start(baresip_phone(tmp_path, port, "alice", PASSWORD))
    assert await wait_for(lambda: bindings(edge, "alice"), 5), phone.output()
    # The worker asks the edge for sip:alice@office: location lookup, relay, auto-answer.
    call = await start(
        sipp_caller(tmp_path, port, "alice", port=sender, domain="office", hold_ms=500)
    )
    assert await call.wait(10) == 0, call.output() + phone.output()
    assert "Call established: sip:caller@127.0.0.1" in phone.output()
