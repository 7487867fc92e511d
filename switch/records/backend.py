"""Which database holds the records: the ``records:`` settings and the one switch point.

::

    records:
      backend: postgresql            # or sqlite (the default: <data_dir>/calls.sqlite3)
      dsn: postgresql://rufweiche@db.example.org:5432/rufweiche
      schema: rufweiche              # one schema per installation, shared by its nodes
      node: node-a                   # this node's name in every call row (default: hostname)
      password_file: /etc/rufweiche/secrets/records-password   # or PGPASSFILE / ~/.pgpass

Everything that opens the records asks this module: the supervisor's writer
(:func:`writer`), the voicemail box (:func:`voicemail_store`), the message desk and
the console's contacts (:func:`message_store`), the presence hub's store
(:func:`presence_store`), and the offline tools
(:func:`existing`, used by ``rufweiche privacy`` and ``rufweiche report``), which see
every node's rows when the records are in PostgreSQL. A password in the DSN is refused
(it would end up in a settings file that is not secret, and in ``ps``).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import aiosqlite
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from presence.store import PresenceStore
from switch.records import schema
from switch.records.messages import MessageStore
from switch.records.voicemails import VoicemailStore
from switch.records.writer import RecordWriter

PRESENCE_FILE = "presence.sqlite3"
"""presence/store.py's file on SQLite (each node its own)."""

PG_SPOOL_NAME = "calls.postgresql"
"""The local name the PostgreSQL writer's spool is derived from
(``<data_dir>/calls.postgresql.spool.jsonl``): the spool stays on the node."""


class RecordsSettings(BaseModel):
    """The ``records:`` section of the settings (docs/operations.md, "Several nodes")."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    backend: Literal["sqlite", "postgresql"] = "sqlite"
    dsn: str | None = None
    schema_name: str = Field(default="rufweiche", alias="schema", pattern=r"^[a-z_][a-z0-9_]*$")
    node: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64)
    password_file: Path | None = None
    pool_size: int = Field(default=4, ge=1, le=64)
    # Several nodes: each notes itself alive every heartbeat_s in the table nodes; the open
    # calls of a node silent for dead_after_s are closed (aborted) by any other node.
    heartbeat_s: float = Field(default=10.0, gt=0, le=3600)
    dead_after_s: float = Field(default=120.0, gt=0)
    # When the records cannot be written (issue 14, docs/operations.md "Full disk"):
    # further spool directories, tried in order after the one next to the database (put
    # one on another file system), reports kept in memory when no spool can be written
    # either (beyond it they are lost, loudly), and a file of reserve_mb taken at start
    # and given back when the disk is full (0 = none).
    spool_dirs: tuple[Path, ...] = ()
    backlog_max: int = Field(default=20_000, ge=0)
    reserve_mb: float = Field(default=8.0, ge=0, le=4096)

    @field_validator("dsn")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("dsn must start with postgresql://")
        from urllib.parse import urlsplit

        if urlsplit(value).password is not None:
            raise ValueError(
                "dsn carries a password: put it in password_file (or PGPASSFILE), not here"
            )
        return value

    @model_validator(mode="after")
    def _dsn_given(self) -> RecordsSettings:
        if self.backend == "postgresql" and not self.dsn:
            raise ValueError("records backend postgresql needs a dsn")
        return self

    @property
    def postgresql(self) -> bool:
        return self.backend == "postgresql"

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()


def writer(records: RecordsSettings | None, data_dir: Path) -> RecordWriter:
    """The record writer the settings ask for (not started: ``async with`` it)."""
    records = records or RecordsSettings()
    reserve = int(records.reserve_mb * 1024 * 1024)
    if not records.postgresql:
        return RecordWriter(
            data_dir / schema.RECORDS_FILE,
            spool_dirs=records.spool_dirs,
            backlog_max=records.backlog_max,
            reserve_bytes=reserve,
        )
    from switch.records.postgres import PgRecordWriter

    assert records.dsn is not None
    return PgRecordWriter(
        records.dsn,
        schema=records.schema_name,
        node=records.node,
        spool_path=data_dir / PG_SPOOL_NAME,
        password=records.password(),
        pool_size=records.pool_size,
        heartbeat_s=records.heartbeat_s,
        dead_after_s=records.dead_after_s,
        spool_dirs=records.spool_dirs,
        backlog_max=records.backlog_max,
        reserve_bytes=reserve,
    )


def voicemail_store(records: RecordsSettings | None, data_dir: Path) -> VoicemailStore:
    """The voicemail box's store; on PostgreSQL it opens its own small pool."""
    if records is None or not records.postgresql:
        return VoicemailStore(data_dir / schema.RECORDS_FILE)
    from switch.records.postgres import PgVoicemailStore

    assert records.dsn is not None
    return PgVoicemailStore(records.dsn, records.schema_name, password=records.password())


def message_store(records: RecordsSettings | None, data_dir: Path) -> MessageStore:
    """The messages' and contacts' store (issue 18); on PostgreSQL a small pool of its own."""
    if records is None or not records.postgresql:
        return MessageStore(data_dir / schema.RECORDS_FILE)
    from switch.records.postgres import PgMessageStore

    assert records.dsn is not None
    return PgMessageStore(records.dsn, records.schema_name, password=records.password())


def presence_store(records: RecordsSettings | None, data_dir: Path) -> PresenceStore:
    """The presence hub's store: ``<data_dir>/presence.sqlite3`` (each node its own, shared
    over MQTT), or on PostgreSQL the ``presence`` table in the shared schema."""
    if records is None or not records.postgresql:
        return PresenceStore(data_dir / PRESENCE_FILE)
    from switch.records.pgpresence import PgPresenceStore

    assert records.dsn is not None
    return PgPresenceStore(records.dsn, records.schema_name, password=records.password())


@contextlib.asynccontextmanager
async def existing(
    data_dir: Path, records: RecordsSettings | None = None
) -> AsyncIterator[aiosqlite.Connection | None]:
    """The records for an offline tool: SQLite's file if it exists (else None, nothing
    created), or a connection to the shared PostgreSQL schema (migrated: every node's rows)."""
    if records is None or not records.postgresql:
        async with schema.existing(data_dir / schema.RECORDS_FILE) as db:
            yield db
        return
    from switch.records.pgconnection import PgConnection
    from switch.records.postgres import create_pool, migrate

    assert records.dsn is not None
    pool = await create_pool(
        records.dsn, records.schema_name, password=records.password(), max_size=2
    )
    try:
        await migrate(pool)
        connection = PgConnection(pool)
        try:
            yield connection.as_aiosqlite()
        finally:
            await connection.close()
    finally:
        await pool.close()
