"""Persistence in a real SQLite file: round trip through a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from presence.hub import PresenceHub
from presence.model import PresenceSource
from presence.store import PresenceStore, StoreError
from rules.presence import PresenceState as S

DIRECTORY = {"acme": {"anna", "bert"}, "beta": {"carl"}}


async def test_round_trip_through_restart(tmp_path: Path) -> None:
    path = tmp_path / "presence.db"
    until = datetime.now(UTC) + timedelta(hours=2)
    async with PresenceStore(path) as store:
        hub = PresenceHub(DIRECTORY, records=await store.load())
        async with store.recording(hub):
            hub.set("acme", "anna", "away", source="mqtt", note="on site", until=until)
            await asyncio.sleep(0.05)  # written by the follower
            hub.set("beta", "carl", "dnd", source="phone")
            hub.call_started("acme", "bert")  # calls are not persisted
            # carl's change may still be pending here: the exit flush writes it

    # a plain sqlite3 reader sees the rows (the file is real and committed)
    with sqlite3.connect(path) as db:
        query = "SELECT tenant, person, state FROM presence"
        rows = {(t, p): s for t, p, s in db.execute(query)}
    assert rows == {
        ("acme", "anna"): "away",
        ("acme", "bert"): "available",
        ("beta", "carl"): "dnd",
    }

    async with PresenceStore(path) as store:
        records = await store.load()
        hub = PresenceHub({"acme": {"anna", "bert"}}, records=records)  # carl left the plan
        anna = hub.record("acme", "anna")
        assert (anna.state, anna.source, anna.note, anna.until, anna.then) == (
            S.AWAY,
            PresenceSource.MQTT,
            "on site",
            until,
            S.AVAILABLE,
        )
        assert hub.record("acme", "bert").state == S.AVAILABLE
        async with store.recording(hub):
            pass
        assert ("beta", "carl") not in await store.load()


async def test_bad_rows_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "presence.db"
    async with PresenceStore(path) as store:
        insert = "INSERT INTO presence VALUES (?, ?, ?, 'web', ?, NULL, NULL, NULL)"
        await store.db.execute(insert, ("acme", "anna", "sleeping", "2026-11-25T08:00:00+00:00"))
        await store.db.execute(insert, ("acme", "bert", "away", "2026-11-25T08:00:00"))  # naive
        await store.db.commit()
        assert await store.load() == {}
    assert "row skipped tenant=acme person=anna" in caplog.text
    assert "person=bert" in caplog.text


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory does not exist"):
        async with PresenceStore(tmp_path / "missing-dir" / "x.db"):
            pass
    (tmp_path / "dir.db").mkdir()  # a directory where the file should be: sqlite cannot open it
    with pytest.raises(StoreError, match="unable to open"):
        async with PresenceStore(tmp_path / "dir.db"):
            pass
