"""A dead node's open calls are closed by another node (PostgreSQL, table ``nodes``): each
writer notes its node alive every heartbeat; the calls of a node silent for longer than
``dead_after_s`` are closed as ``aborted``, a live node's open calls are left alone.
Against the real server on 127.0.0.1:5432 (a schema per test)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from switch.records.postgres import PgRecordWriter
from tests.helpers.pg import DSN, fresh_schema
from tests.helpers.records import make_record

pytestmark = [pytest.mark.peer]


def writer(
    schema: str, node: str, tmp_path: Path, heartbeat_s: float | None, dead_after_s: float = 120
) -> PgRecordWriter:
    return PgRecordWriter(
        DSN,
        schema=schema,
        node=node,
        spool_path=tmp_path / node / "calls.postgresql",
        heartbeat_s=heartbeat_s,
        dead_after_s=dead_after_s,
    )


async def open_calls(schema: str) -> dict[str, str | None]:
    conn = await asyncpg.connect(DSN)
    try:
        rows = await conn.fetch(f'SELECT call_id, outcome FROM "{schema}".calls')
    finally:
        await conn.close()
    return {r[0]: r[1] for r in rows}


async def test_a_silent_nodes_open_calls_are_closed_a_live_nodes_are_not(
    tmp_path: Path,
) -> None:
    async with fresh_schema() as schema:
        # node "dead" wrote a heartbeat and an open call, then was never heard of again
        async with writer(schema, "dead", tmp_path, heartbeat_s=None) as dead:
            dead.submit("started", make_record(call_id="dead-1"))
            await dead.flush()
            assert dead.pool is not None
            await dead.beat()  # its last heartbeat
        async with (
            writer(schema, "live", tmp_path, heartbeat_s=None, dead_after_s=1.0) as live,
            writer(schema, "other", tmp_path, heartbeat_s=0.2, dead_after_s=1.0),
        ):
            live.submit("started", make_record(call_id="live-1"))
            await live.flush()
            assert (await open_calls(schema))["dead-1"] is None  # not yet: silent < 1 s
            for _ in range(40):  # "live" keeps beating; "dead" stays silent
                await live.beat()
                if (await open_calls(schema))["dead-1"] is not None:
                    break
                await asyncio.sleep(0.1)
            found = await open_calls(schema)
            assert found["dead-1"] == "aborted"
            assert found["live-1"] is None
