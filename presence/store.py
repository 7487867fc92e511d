"""Presence persistence in a small SQLite table (aiosqlite), restored at start.

Use::

    async with PresenceStore(path) as store:
        hub = PresenceHub(directory, records=await store.load())
        async with hub, store.recording(hub):
            ...

:meth:`PresenceStore.recording` follows the hub's coalescing change feed and writes
each batch in one transaction, so a burst of changes costs one commit; on exit it writes
what is still pending. Call counts are not stored: after a restart nobody is on a call
that the new process knows about (see :class:`~presence.model.PresenceBook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Self

import aiosqlite

from presence.errors import PresenceError
from presence.hub import PresenceHub, Watch
from presence.model import Key, PresenceRecord, PresenceSource
from rules.presence import PresenceState

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS presence (
    tenant      TEXT NOT NULL,
    person      TEXT NOT NULL,
    state       TEXT NOT NULL,
    source      TEXT NOT NULL,
    since       TEXT NOT NULL,   -- ISO 8601 with offset
    note        TEXT,
    until       TEXT,
    then_state  TEXT,
    PRIMARY KEY (tenant, person)
)
"""

RETRY_AFTER = 1.0
"""Seconds before a failed write (disk full, locked) is tried again."""


class StoreError(PresenceError):
    """The presence database could not be opened."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"presence store {str(path)!r}: {reason}")
        self.path = path


class PresenceStore:
    UPSERT = (
        "INSERT INTO presence (tenant, person, state, source, since, note, until, then_state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant, person) DO UPDATE SET state=excluded.state,"
        " source=excluded.source, since=excluded.since, note=excluded.note,"
        " until=excluded.until, then_state=excluded.then_state"
    )
    """How :meth:`save` writes a record (a shared table's store keeps the later one)."""

    def __init__(self, path: str | Path, *, flush_timeout: float = 5.0) -> None:
        self._path = Path(path)
        self._flush_timeout = flush_timeout
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        # Checked first: when aiosqlite's connect fails it leaves its worker thread to post a
        # result to the event loop later, which fails if the loop has closed by then.
        if not self._path.parent.is_dir():
            raise StoreError(self._path, "directory does not exist")
        if not os.access(self._path.parent, os.W_OK | os.X_OK):
            raise StoreError(self._path, "directory is not writable")
        pending = aiosqlite.connect(self._path)
        try:
            self._db = await pending
        except (OSError, aiosqlite.Error) as exc:
            thread = getattr(pending, "_thread", None)
            if thread is not None:
                await asyncio.to_thread(thread.join, 1.0)
            raise StoreError(self._path, str(exc)) from None
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute(SCHEMA)
            await self._db.commit()
        except (OSError, aiosqlite.Error) as exc:
            await self._close()
            raise StoreError(self._path, str(exc)) from None
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("PresenceStore used outside 'async with'")
        return self._db

    async def load(self) -> dict[Key, PresenceRecord]:
        """All stored records; a row that no longer parses is skipped with a warning."""
        records: dict[Key, PresenceRecord] = {}
        sql = "SELECT tenant, person, state, source, since, note, until, then_state FROM presence"
        async with self.db.execute(sql) as cursor:
            async for row in cursor:
                tenant, person, state, source, since, note, until, then = row
                try:
                    records[(tenant, person)] = PresenceRecord(
                        set_state=PresenceState(state),
                        set_source=PresenceSource(source),
                        since=_aware(since),
                        note=note,
                        until=_aware(until) if until else None,
                        then=PresenceState(then) if then else None,
                    )
                except ValueError as exc:
                    log.warning(
                        "presence store row skipped tenant=%s person=%s: %s", tenant, person, exc
                    )
        return records

    async def save(self, changes: Mapping[Key, PresenceRecord | None]) -> None:
        """Write records (``None`` deletes) in one transaction."""
        upserts = [
            (
                t,
                p,
                r.set_state.value,
                r.set_source.value,
                r.since.isoformat(),
                r.note,
                r.until.isoformat() if r.until else None,
                r.then.value if r.then else None,
            )
            for (t, p), r in changes.items()
            if r is not None
        ]
        deletes = [key for key, r in changes.items() if r is None]
        await self.db.executemany(self.UPSERT, upserts)
        await self.db.executemany("DELETE FROM presence WHERE tenant = ? AND person = ?", deletes)
        await self.db.commit()

    @contextlib.asynccontextmanager
    async def recording(self, hub: PresenceHub) -> AsyncIterator[None]:
        """Write every change of ``hub`` while the block runs, and what is left at its end."""
        with hub.watch() as watch:
            task = asyncio.create_task(self._follow(hub, watch), name="presence-store")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                left = watch.take()
                if left:
                    try:
                        async with asyncio.timeout(self._flush_timeout):
                            await self._write(hub, left)
                    except (TimeoutError, aiosqlite.Error, OSError) as exc:
                        log.error(
                            "presence store: %d changes not written at stop: %s", len(left), exc
                        )

    async def _follow(self, hub: PresenceHub, watch: Watch) -> None:
        while True:
            batch = await watch.next_batch()
            try:
                await self._write(hub, batch)
            except asyncio.CancelledError:
                watch.add(batch)  # written at the final flush (upserts are idempotent)
                raise
            except (aiosqlite.Error, OSError) as exc:
                log.error("presence store write failed, retrying in %.0f s: %s", RETRY_AFTER, exc)
                watch.add(batch)
                await asyncio.sleep(RETRY_AFTER)

    async def _write(self, hub: PresenceHub, keys: Collection[Key]) -> None:
        await self.save({key: hub.get(key) for key in keys})


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no offset")
    return value
