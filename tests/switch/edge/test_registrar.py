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

from switch.edge import Edge, rpc
from switch.errors import EdgeRpcError
from tests.helpers.baresip import needs_baresip
from tests.helpers.edge import (
    PASSWORD,
    EdgeFactory,
    Starter,
    baresip_phone,
    needs_kamailio,
    sipp_caller,
    stored_bindings,
)
from tests.helpers.ports import free_port
from tests.helpers.rawsip import sip_request

pytestmark = [
    pytest.mark.peer,
    needs_kamailio,
    needs_baresip,
]


async def bindings(edge: Edge, user: str) -> list[str]:
    """The contacts of ``user`` in the edge's location table (written back by a timer)."""
    rows = await asyncio.to_thread(stored_bindings, edge.paths.db, user)
    return [contact for contact, _ in rows]


async def registered(edge: Edge, user: str) -> bool:
    """Whether the edge's registrar holds ``user`` now (usrloc's memory, over RPC)."""
    listen = f"{edge.settings.listen_host}:{edge.settings.listen_port}"
    try:
        await rpc.call(listen, "ul.lookup", "location", user)
    except EdgeRpcError:
        return False  # "AOR not found"
    return True


async def wait_for(predicate: object, seconds: float) -> bool:
    assert callable(predicate)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_wrong_password_gets_401_and_no_binding(
    tmp_path: Path, alice_secrets: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    edge = await start_edge(secrets_file=alice_secrets)
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
    assert not await registered(edge, "alice")


async def test_phone_registers_and_a_worker_reaches_it(
    tmp_path: Path, alice_secrets: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    sender = free_port(tcp=True)
    edge = await start_edge(
        secrets_file=alice_secrets, workers=[{"uri": f"sip:127.0.0.1:{sender}", "maxload": 4}]
    )
    port = edge.settings.listen_port
    phone = await start(baresip_phone(tmp_path, port, "alice", PASSWORD))
    assert await bindings(edge, "alice"), phone.output()
    assert await registered(edge, "alice")
    # The worker asks the edge for sip:alice@office: location lookup, relay, auto-answer.
    call = await start(
        sipp_caller(tmp_path, port, "alice", port=sender, domain="office", hold_ms=500)
    )
    assert await call.wait(10) == 0, call.output() + phone.output()
    assert "Call established: sip:caller@127.0.0.1" in phone.output()


async def test_phone_registers_while_someone_reads_the_edge_database(
    tmp_path: Path, alice_secrets: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    # Kamailio's db_sqlite sets no busy timeout: in SQLite's rollback-journal mode an open
    # read (the dashboard, a presence query, auth_db in another Kamailio process) made the
    # registrar's write fail at once ("database is locked", 500 to the phone). The edge
    # database runs in WAL mode, where readers and the one writer do not block each other.
    edge = await start_edge(secrets_file=alice_secrets)
    with sqlite3.connect(edge.paths.db, isolation_level=None) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM location").fetchone()  # holds a read lock
        phone = await start(baresip_phone(tmp_path, edge.settings.listen_port, "alice", PASSWORD))
        assert await wait_for(lambda: "[1 binding]" in phone.output(), 5), phone.output()
        reader.execute("COMMIT")
    assert "500 Server Internal Error" not in phone.output()
    assert await bindings(edge, "alice")
