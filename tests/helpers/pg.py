"""PostgreSQL for the tests (records, shared edges, two nodes): the machine's server
(127.0.0.1:5432, database ``test``, trust auth), a schema or database unique per test that
is dropped afterwards, and a private server (initdb + pg_ctl in tmp_path) for tests that
kill and restart it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from switch.records.backend import RecordsSettings

DSN = os.environ.get("RUFWEICHE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
_numbers = itertools.count(1)
T = TypeVar("T")


async def reachable(dsn: str = DSN) -> str | None:
    """None when the server answers, else why not."""
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no PostgreSQL answers at {dsn} ({exc})"
    await conn.close()
    return None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` from a synchronous test, on a thread of its own: ``asyncio.run`` on the
    main thread would replace (and orphan) the loop pytest-asyncio keeps there."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def unique_schema() -> str:
    return f"rw_test_{os.getpid()}_{next(_numbers)}"


@contextlib.asynccontextmanager
async def fresh_schema(dsn: str = DSN) -> AsyncIterator[str]:
    """A schema name nobody uses; dropped (with everything in it) at the end."""
    why = await reachable(dsn)
    if why:
        pytest.skip(why)
    name = unique_schema()
    try:
        yield name
    finally:
        await drop_schema(name, dsn)


async def drop_schema(name: str, dsn: str = DSN) -> None:
    """Drop the schema ``name`` with everything in it (if it is there)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def records_settings(schema: str, node: str) -> RecordsSettings:
    """The ``records:`` section of node ``node`` writing to ``schema`` on the test server."""
    return RecordsSettings(backend="postgresql", dsn=DSN, schema=schema, node=node)


def settings_file(tmp_path: Path, schema: str) -> Path:
    """A settings file whose ``records:`` are ``schema`` on the test server (for the CLI)."""
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"records:\n  backend: postgresql\n  dsn: {DSN}\n  schema: {schema}\n  node: tool\n"
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A PostgreSQL of this test only (run as user ``postgres``: initdb refuses root)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.log = root / "pg.log"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        self.root.chmod(0o777)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as out:
            out.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def kill(self) -> None:
        """Immediate shutdown: like a crash or a failover, clients lose their connections."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)


@contextlib.contextmanager
def private_server() -> Iterator[PrivateServer]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"{PG_BIN}/initdb is missing (Debian package postgresql-15)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("initdb refuses root and runuser is missing")
    # Not under tmp_path: pytest's directories are 0700 root's, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="rw-pg-"))
    server = PrivateServer(root)
    try:
        server.init()
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot create a private PostgreSQL: {exc}")
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def fresh_database(dsn: str = DSN) -> AsyncIterator[str]:
    """A database of its own (Kamailio's URLs name a database, not a schema), as a
    ``postgres://`` URL; dropped at the end."""
    why = await reachable(dsn)
    if why:
        pytest.skip(why)
    name = f"rw_db_{os.getpid()}_{next(_numbers)}"
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def location_contacts(url: str, user: str) -> list[str]:
    """The contacts Kamailio's shared ``location`` table (at ``url``) holds for ``user``."""
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"), timeout=5)
    try:
        rows = await conn.fetch("SELECT contact FROM location WHERE username = $1", user)
    finally:
        await conn.close()
    return [r[0] for r in rows]
