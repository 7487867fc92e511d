"""An aiosqlite-shaped connection on an asyncpg pool: the records' SQL runs unchanged.

:class:`PgConnection` speaks the part of ``aiosqlite.Connection`` that switch/records uses
(``execute`` giving a cursor with ``description``, ``fetchone``, ``fetchall``, ``rowcount``
and async iteration; ``executemany``; ``commit``/``rollback``; ``close``), translating each
statement with :mod:`switch.records.dialect` and each asyncpg error into the ``sqlite3``
class the records already handle (see :mod:`switch.records.postgres`). Outside a
transaction each statement borrows a pooled connection; ``BEGIN`` holds one until
``COMMIT``/``ROLLBACK``; a connection that failed is terminated, never reused.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final, cast
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import asyncpg

from switch.records import dialect

Description = tuple[tuple[str, None, None, None, None, None, None], ...]


def redact(dsn: str) -> str:
    """The DSN without its password, for logs and errors."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


_TRANSIENT: Final = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # "connection is closed", a pool closing
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)


def as_sqlite_error(exc: BaseException) -> sqlite3.Error:
    """The ``sqlite3`` class the records handle for an asyncpg (or socket) error."""
    text = f"postgresql: {type(exc).__name__}: {exc}"
    if isinstance(exc, _TRANSIENT):
        return sqlite3.OperationalError(text)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return sqlite3.IntegrityError(text)
    if isinstance(exc, asyncpg.DataError):
        return sqlite3.DataError(text)
    return sqlite3.DatabaseError(text)


@contextlib.contextmanager
def _translated() -> Any:
    try:
        yield
    except sqlite3.Error:
        raise
    except (asyncpg.PostgresError, *_TRANSIENT) as exc:
        raise as_sqlite_error(exc) from exc


def _rowcount(status: str) -> int:
    """``"UPDATE 3"`` -> 3, ``"INSERT 0 1"`` -> 1; -1 when the status has no count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class PgCursor:
    """The rows of one statement, fetched at once (the records' queries are bounded)."""

    def __init__(self, description: Description, rows: list[tuple[Any, ...]], rowcount: int):
        self.description = description
        self.rowcount = rowcount
        self._rows = rows
        self._next = 0

    async def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __aiter__(self) -> PgCursor:
        return self

    async def __anext__(self) -> tuple[Any, ...]:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def close(self) -> None:
        self._rows = []


class _Result:
    """What ``execute`` returns: awaitable, and an async context manager (as aiosqlite's)."""

    def __init__(self, connection: PgConnection, sql: str, args: Sequence[Any]) -> None:
        self._run = connection._execute(sql, args)

    def __await__(self) -> Any:
        return self._run.__await__()

    async def __aenter__(self) -> PgCursor:
        return await self._run

    async def __aexit__(self, *exc: object) -> None:
        return None


class PgConnection:
    """The subset of ``aiosqlite.Connection`` the records use, on an asyncpg pool."""

    dialect: Final = "postgresql"

    def __init__(self, pool: asyncpg.Pool | None) -> None:
        self.pool = pool  # None until the server answered (a writer started offline)
        self._held: asyncpg.pool.PoolConnectionProxy | None = None
        self._transaction: Any = None

    def as_aiosqlite(self) -> aiosqlite.Connection:
        """This adapter typed as what the records' functions take (they use only the
        subset above; tests/switch/records/test_postgres.py runs them on it)."""
        return cast(aiosqlite.Connection, self)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Result:
        return _Result(self, sql, args)

    async def _execute(self, sql: str, args: Sequence[Any]) -> PgCursor:
        text = dialect.statement(sql)
        if text == "BEGIN":
            await self._begin()
            return PgCursor((), [], -1)
        with _translated():
            async with self._connection() as conn:
                if _returns_rows(text):
                    statement = await conn.prepare(text)
                    records = await statement.fetch(*args)
                    names = tuple(
                        (a.name, None, None, None, None, None, None)
                        for a in statement.get_attributes()
                    )
                    return PgCursor(names, [tuple(r) for r in records], len(records))
                status = await conn.execute(text, *args)
                return PgCursor((), [], _rowcount(status))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with _translated():
            async with self._connection() as conn:
                await conn.executemany(dialect.statement(sql), list(rows))

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        if self._held is not None:
            yield self._held
            return
        if self.pool is None:
            raise sqlite3.OperationalError("postgresql: not connected yet")
        async with self.pool.acquire() as conn:
            yield conn

    async def _begin(self) -> None:
        if self._held is not None:
            raise sqlite3.OperationalError("cannot start a transaction within a transaction")
        if self.pool is None:
            raise sqlite3.OperationalError("postgresql: not connected yet")
        with _translated():
            conn = await self.pool.acquire()
            try:
                self._transaction = conn.transaction()
                await self._transaction.start()
            except BaseException:
                await self._release(conn, broken=True)
                raise
        self._held = conn

    async def commit(self) -> None:
        await self._end("commit")

    async def rollback(self) -> None:
        await self._end("rollback")

    async def _end(self, how: str) -> None:
        conn, transaction = self._held, self._transaction
        if conn is None:
            return  # autocommit: nothing to end (aiosqlite's commit() without BEGIN)
        self._held = self._transaction = None
        broken = True
        try:
            with _translated():
                await (transaction.commit() if how == "commit" else transaction.rollback())
            broken = False
        finally:
            await self._release(conn, broken=broken)

    async def _release(self, conn: asyncpg.pool.PoolConnectionProxy, *, broken: bool) -> None:
        if broken:
            with contextlib.suppress(Exception):
                conn.terminate()  # never hand a half-dead connection to the next batch
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    async def close(self) -> None:
        """Ends a held transaction (rolled back); the pool is its owner's to close."""
        if self._held is not None:
            with contextlib.suppress(sqlite3.Error):
                await self.rollback()


def _returns_rows(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", "VALUES") or " RETURNING " in sql.upper()
