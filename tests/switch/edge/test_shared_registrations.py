"""Two edges share registrations and subscribers in PostgreSQL (``shared_db_url``): a phone
(baresip) registers through edge A; a worker of node B (a SIPp UAC sending from an address
in B's dispatcher list) calls it through edge B, whose lookup finds A's binding in the
shared ``location`` table. The database is created for the test on the machine's
PostgreSQL (127.0.0.1:5432, trust auth) and dropped at the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers.baresip import needs_baresip
from tests.helpers.edge import (
    PASSWORD,
    EdgeFactory,
    Starter,
    baresip_phone,
    needs_db_postgres,
    needs_kamailio,
    sipp_caller,
)
from tests.helpers.pg import fresh_database, location_contacts
from tests.helpers.ports import free_port

pytestmark = [
    pytest.mark.peer,
    needs_kamailio,
    needs_baresip,
    needs_db_postgres,
]


async def test_a_phone_registered_through_edge_a_is_reached_through_edge_b(
    tmp_path: Path, alice_secrets: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    async with fresh_database() as url:
        sender = free_port(tcp=True)
        # alice_secrets: the shared settings directory's secrets file
        common = {"secrets_file": alice_secrets, "shared_db_url": url}
        edge_a = await start_edge(
            **common, run_dir=tmp_path / "edge-a", db_path=tmp_path / "edge-a" / "edge.db"
        )
        edge_b = await start_edge(
            **common,
            run_dir=tmp_path / "edge-b",
            db_path=tmp_path / "edge-b" / "edge.db",
            workers=[{"uri": f"sip:127.0.0.1:{sender}", "maxload": 4}],
        )
        phone = await start(baresip_phone(tmp_path, edge_a.settings.listen_port, "alice", PASSWORD))
        for _ in range(50):
            if await location_contacts(url, "alice"):
                break
            await asyncio.sleep(0.1)
        assert await location_contacts(url, "alice"), phone.output()
        port_b = edge_b.settings.listen_port
        call = await start(
            sipp_caller(tmp_path, port_b, "alice", port=sender, domain="office", hold_ms=500)
        )
        assert await call.wait(10) == 0, call.output() + phone.output()
        assert "Call established: sip:caller@127.0.0.1" in phone.output()
