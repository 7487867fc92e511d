"""Two edges share registrations and subscribers in PostgreSQL (``shared_db_url``): a phone
(baresip) registers through edge A; a worker of node B (a SIPp UAC sending from an address
in B's dispatcher list) calls it through edge B, whose lookup finds A's binding in the
shared ``location`` table. The database is created for the test on the machine's
PostgreSQL (127.0.0.1:5432, trust auth) and dropped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from switch.edge.credentials import add_user
from tests.helpers.edge import (
    PASSWORD,
    EdgeFactory,
    Starter,
    baresip_phone,
    needs_kamailio,
    sipp_caller,
)
from tests.helpers.ports import free_port

pytestmark = [
    pytest.mark.peer,
    needs_kamailio,
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip-core is needed"),
    pytest.mark.skipif(
        not Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so").exists()
        and not Path("/usr/lib/kamailio/modules/db_postgres.so").exists(),
        reason="db_postgres.so is missing (Debian kamailio-postgres-modules)",
    ),
]

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.asynccontextmanager
async def shared_database() -> AsyncIterator[str]:
    try:
        admin = await asyncpg.connect(ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"no PostgreSQL answers at {ADMIN} ({exc})")
    name = f"rw_kam_{os.getpid()}_{free_port(tcp=True)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def shared_bindings(url: str, user: str) -> list[str]:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"), timeout=5)
    try:
        rows = await conn.fetch("SELECT contact FROM location WHERE username = $1", user)
    finally:
        await conn.close()
    return [r[0] for r in rows]


async def test_a_phone_registered_through_edge_a_is_reached_through_edge_b(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    async with shared_database() as url:
        secrets = tmp_path / "secrets.yaml"  # the shared settings directory's secrets file
        add_user(secrets, "alice", PASSWORD, realm="office")
        sender = free_port(tcp=True)
        common = {"secrets_file": secrets, "shared_db_url": url}
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
            if await shared_bindings(url, "alice"):
                break
            await asyncio.sleep(0.1)
        assert await shared_bindings(url, "alice"), phone.output()
        port_b = edge_b.settings.listen_port
        call = await start(
            sipp_caller(tmp_path, port_b, "alice", port=sender, domain="office", hold_ms=500)
        )
        assert await call.wait(10) == 0, call.output() + phone.output()
        assert "Call established: sip:caller@127.0.0.1" in phone.output()
