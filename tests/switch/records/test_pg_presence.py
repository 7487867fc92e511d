"""Presence in the shared PostgreSQL schema (records.backend: postgresql): two nodes'
hubs write one ``presence`` table, a node that starts loads what the others set, privacy
export/delete reach every node's rows, and a node whose PostgreSQL is down at start
starts anyway and writes once it answers. Against the real server on 127.0.0.1:5432
(a schema per test) and a private one (initdb/pg_ctl) for the outage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from presence.hub import PresenceHub
from presence.store import PresenceStore
from rules.presence import PresenceState as S
from switch.records import privacy
from switch.records.backend import RecordsSettings, presence_store
from switch.records.pgpresence import PgPresenceStore
from tests.helpers.pg import DSN, fresh_schema, private_server

DIRECTORY = {"acme": {"anna", "bert"}, "beta": {"carl"}}


def settings(schema: str, node: str, dsn: str = DSN) -> RecordsSettings:
    return RecordsSettings(backend="postgresql", dsn=dsn, schema=schema, node=node)


def test_the_backend_chooses_the_presence_store(tmp_path: Path) -> None:
    lite = presence_store(None, tmp_path)
    assert type(lite) is PresenceStore
    shared = presence_store(settings("rufweiche", "a"), tmp_path)
    assert isinstance(shared, PgPresenceStore)
    assert shared.schema == "rufweiche"


async def rows(dsn: str, schema: str) -> dict[tuple[str, str], str]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        found = await conn.fetch(f'SELECT tenant, person, state FROM "{schema}".presence')
    finally:
        await conn.close()
    return {(r[0], r[1]): r[2] for r in found}


@pytest.mark.peer
async def test_two_nodes_share_the_presence_table_and_privacy_sees_both(tmp_path: Path) -> None:
    until = datetime.now(UTC) + timedelta(hours=2)
    async with fresh_schema() as schema:
        a_store = presence_store(settings(schema, "node-a"), tmp_path / "a")
        b_store = presence_store(settings(schema, "node-b"), tmp_path / "b")
        async with a_store, b_store:  # both create the table at once: created once
            a = PresenceHub(DIRECTORY, records=await a_store.load())
            b = PresenceHub(DIRECTORY, records=await b_store.load())
            async with a_store.recording(a), b_store.recording(b):
                a.set("acme", "anna", "away", source="mqtt", note="Baustelle", until=until)
                b.set("beta", "carl", "dnd", source="phone")
        assert (await rows(DSN, schema))[("acme", "anna")] == "away"
        # a node that starts (again) loads what both nodes set
        async with presence_store(settings(schema, "node-c"), tmp_path / "c") as c_store:
            hub = PresenceHub(DIRECTORY, records=await c_store.load())
            anna = hub.record("acme", "anna")
            assert (anna.state, anna.note, anna.until) == (S.AWAY, "Baustelle", until)
            assert hub.record("beta", "carl").state == S.DND
        # privacy on any node reaches both nodes' rows; nothing local is needed
        records = settings(schema, "tool")
        carl = privacy.Subject.parse("beta", "carl")
        exported = await privacy.export(tmp_path / "elsewhere", carl, records)
        assert [(p["person"], p["state"]) for p in exported["presence"]] == [("carl", "dnd")]
        counts = await privacy.delete(tmp_path / "elsewhere", carl, records)
        assert counts["presence"] == 1
        left = await rows(DSN, schema)
        assert ("beta", "carl") not in left
        assert left[("acme", "anna")] == "away"
        assert not list(tmp_path.rglob("presence.sqlite3"))


@pytest.mark.peer
@pytest.mark.slow
async def test_a_node_starts_while_postgresql_is_down_and_stores_presence_later(
    tmp_path: Path,
) -> None:
    with private_server() as server:
        server.kill()
        store = PgPresenceStore(server.dsn, "rw", retry_s=0.2)
        async with store:
            assert await store.load() == {}  # started without the database
            hub = PresenceHub(DIRECTORY)
            async with store.recording(hub):
                hub.set("acme", "bert", "away", source="web")
                await asyncio.sleep(0.5)  # the write fails and is retried
                await asyncio.to_thread(server.start)
                for _ in range(100):  # the connector, then the store's retry: ~1 s
                    if (
                        store.pool is not None
                        and (await rows(server.dsn, "rw")).get(("acme", "bert")) == "away"
                    ):
                        break
                    await asyncio.sleep(0.2)
        assert (await rows(server.dsn, "rw"))[("acme", "bert")] == "away"
