"""Presence in the shared PostgreSQL schema (``records.backend: postgresql``).

:class:`PgPresenceStore` is :class:`presence.store.PresenceStore` (the same table, the same
load/save/recording) on a :class:`~switch.records.pgconnection.PgConnection`: the table
``presence`` lives in the installation's schema beside the calls, so ``rufweiche privacy
export|delete`` reaches every node's presence rows, and a node that starts loads the
states the others set. Sharing *while running* stays MQTT's (:mod:`presence.peers`: last
writer wins, no loops); every node writes the state it converged to, so the row ends as
the state all nodes agree on, and a write whose state began earlier than the stored
row's (``since``) is ignored, so a node's stale or default record never undoes a newer
one (two nodes starting at once).

A server that does not answer at start does not keep the node from starting: the hub
starts empty (the peers' retained MQTT messages fill it), writes fail and are retried by
the store's own loop (every second) while a task connects in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Self

import asyncpg

from presence.model import Key, PresenceRecord
from presence.store import SCHEMA, PresenceStore
from switch.errors import RecordsUnavailableError
from switch.records.pgconnection import PgConnection
from switch.records.postgres import open_migrated

log = logging.getLogger(__name__)

_LOCK_KEY = 0x52555052  # "RUPR": two nodes creating the table at once create it once
RETRY_S = 1.0


class PgPresenceStore(PresenceStore):
    """The presence table in ``schema`` on the records' PostgreSQL (see the module doc)."""

    # Several nodes write the row: a record whose state began earlier than the stored one
    # never overwrites it (two nodes starting at once: one's default "available" does not
    # undo what the other's person just set).
    UPSERT = (
        PresenceStore.UPSERT + " WHERE excluded.since::timestamptz >= presence.since::timestamptz"
    )

    def __init__(
        self, dsn: str, schema: str, *, password: str | None = None, retry_s: float = RETRY_S
    ) -> None:
        super().__init__("postgresql")
        self.dsn, self.schema = dsn, schema
        self._password = password
        self._retry_s = retry_s
        self.pool: asyncpg.Pool | None = None
        self._connection = PgConnection(None)
        self._connector: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._db = self._connection.as_aiosqlite()
        try:
            await self._connect()
        except RecordsUnavailableError as exc:
            log.warning("%s: presence not stored until it answers", exc)
            self._connector = asyncio.create_task(self._keep_connecting(), name="presence-pg")
        return self

    async def _connect(self) -> None:
        pool = await open_migrated(self.dsn, self.schema, self._password)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                await conn.execute(SCHEMA)
        except BaseException:
            await pool.close()
            raise
        self.pool = self._connection.pool = pool

    async def _keep_connecting(self) -> None:
        while self.pool is None:
            await asyncio.sleep(self._retry_s)
            with contextlib.suppress(RecordsUnavailableError):
                await self._connect()
        log.info("presence store: the records' PostgreSQL answers again")

    async def load(self) -> dict[Key, PresenceRecord]:
        if self.pool is None:
            return {}
        return await super().load()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        await self._connection.close()
        self._db = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


__all__ = ["PgPresenceStore"]
