"""A PostgreSQL restart loses no record: two nodes' writers keep submitting calls while a
private PostgreSQL (initdb + pg_ctl in a temporary directory, its own port) is killed
(``pg_ctl -m immediate``: like a crash or a failover) and started again. What the server
refused went to each node's spool and was replayed; every call is in the one database.
A third node that starts while the server is down starts anyway, spools, connects when
the server is back and replays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from switch.records.postgres import PgRecordWriter
from tests.helpers.pg import PrivateServer, private_server
from tests.helpers.records import make_record, same_call

pytestmark = [pytest.mark.peer, pytest.mark.slow]

CALLS_PER_NODE = 120


async def calls(writer: PgRecordWriter, node: str, pause: float) -> None:
    for n in range(CALLS_PER_NODE):
        start = make_record(call_id=f"{node}-{n}", worker="w1", started_wall=1_793_000_000.0 + n)
        writer.submit("started", start)
        await asyncio.sleep(pause)
        writer.submit(
            "ended",
            same_call(start, ended_ms=1000.0, outcome="missed"),
        )
        await asyncio.sleep(pause)


async def count(server: PrivateServer) -> dict[str, int]:
    conn = await asyncpg.connect(server.dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT node, COUNT(*) FROM rw.calls WHERE outcome = 'missed' GROUP BY node"
        )
    finally:
        await conn.close()
    return {r[0]: int(r[1]) for r in rows}


async def test_a_postgresql_restart_mid_run_loses_no_record(tmp_path: Path) -> None:
    with private_server() as server:
        writers = [
            PgRecordWriter(
                server.dsn,
                schema="rw",
                node=node,
                spool_path=tmp_path / node / "calls.postgresql",
                retry_interval=0.2,
            )
            for node in ("node-a", "node-b")
        ]
        async with writers[0] as a, writers[1] as b:
            run = asyncio.gather(calls(a, "node-a", 0.01), calls(b, "node-b", 0.01))
            await asyncio.sleep(0.8)
            await asyncio.to_thread(server.kill)
            down_at = time.monotonic()
            # A third node starts while the server is down: it starts anyway and spools.
            c = PgRecordWriter(
                server.dsn,
                schema="rw",
                node="node-c",
                spool_path=tmp_path / "node-c" / "calls.postgresql",
                retry_interval=0.2,
            )
            await c.__aenter__()
            try:
                assert not c.writable
                late = asyncio.create_task(calls(c, "node-c", 0.0))
                await asyncio.sleep(1.0)
                await asyncio.to_thread(server.start)
                await run
                await late
                for _ in range(150):  # at most 30 s
                    if c.pool is not None and not c.spool_pending:
                        break
                    await asyncio.sleep(0.2)
                await c.flush()
                assert c.stats.records_spooled == 2 * CALLS_PER_NODE
                assert c.stats.records_replayed == 2 * CALLS_PER_NODE
            finally:
                await c.__aexit__(None, None, None)
            # The writers replay their spools on their own (retry timer, next batch).
            for _ in range(150):  # at most 30 s
                if not (a.spool_pending or b.spool_pending):
                    break
                await asyncio.sleep(0.2)
            await a.flush()
            await b.flush()
            spooled = a.stats.records_spooled + b.stats.records_spooled
            replayed = a.stats.records_replayed + b.stats.records_replayed
            lost = a.stats.records_lost + b.stats.records_lost
            failed = a.stats.failed_batches + b.stats.failed_batches
            assert not a.spool_pending
            assert not b.spool_pending
        assert time.monotonic() - down_at < 60
        assert spooled > 0, "the server was down while the nodes wrote: something was spooled"
        assert failed > 0
        assert replayed == spooled
        assert lost == 0
        assert await count(server) == {
            "node-a": CALLS_PER_NODE,
            "node-b": CALLS_PER_NODE,
            "node-c": CALLS_PER_NODE,
        }
