"""Registrations and subscribers in a PostgreSQL that several edges share (``shared_db_url``).

Why PostgreSQL and not DMQ: the records of several nodes already live in one PostgreSQL
(switch/records/postgres.py), so the edges' ``location`` (usrloc) and ``subscriber``
(auth_db) tables go there too (Kamailio's ``db_postgres``) — one database to back up and
to replicate, no mesh of edges that must know each other (DMQ would need every node's
address and a resync after a partition). usrloc runs in ``db_mode 3`` (DB only): a lookup
on node B reads the row that node A's REGISTER wrote, at the price of one query per
lookup. The trunks' ``uacreg`` rows (uac) are shared too, so that every node answers a
provider's 401 on an outbound INVITE and recognises the trunk of an inbound one; only
the node whose ``register_trunks`` is true registers them (uac ``reg_active``): a
provider takes one registration per account. Presence (presentity, pua) and pipelimit
stay in each edge's SQLite file: they are per-edge state.

:func:`prepare_shared_database` creates the tables from kamailio-postgres-modules' schemas
when missing (under an advisory lock: two nodes may start at once) and replaces the rows
of ``subscriber`` by the secrets file's users (every node reads the same shared file, so
this is idempotent). The password is not in the URL: libpq's ``PGPASSFILE``/``~/.pgpass``,
read by asyncpg here and by Kamailio's libpq alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any, Final

import asyncpg

from switch.edge.settings import EdgeSettings
from switch.errors import CredentialsError, EdgeConfigError

SCHEMA_DIR: Final = Path("/usr/share/kamailio/postgres")
SCHEMAS: Final = ("standard", "auth_db", "usrloc")
_LOCK_KEY: Final = 0x4B414D31  # "KAM1"


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


async def _prepare(
    url: str,
    users: list[tuple[str, str, str]] | None,
    trunks: list[dict[str, Any]] | None = None,
) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=10)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            have = await conn.fetchval(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = 'location'"
            )
            if not have:
                for name in SCHEMAS:
                    script = (SCHEMA_DIR / f"{name}-create.sql").read_text(encoding="utf-8")
                    for statement in _statements(script):
                        await conn.execute(statement)
            if trunks is not None:
                await _write_uacreg(conn, trunks)
            if users is not None:
                await conn.execute("DELETE FROM subscriber")
                await conn.executemany(
                    "INSERT INTO subscriber (username, domain, password, ha1, ha1b) "
                    "VALUES ($1, $2, '', $3, '')",
                    users,
                )
    finally:
        await conn.close()


async def _write_uacreg(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Replace the shared ``uacreg`` rows by the trunks (every node writes the same rows
    from the same shared settings, under the lock: idempotent)."""
    have = await conn.fetchval(
        "SELECT 1 FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = 'uacreg'"
    )
    if not have:
        script = (SCHEMA_DIR / "uac-create.sql").read_text(encoding="utf-8")
        for statement in _statements(script):
            await conn.execute(statement)
    await conn.execute("DELETE FROM uacreg")
    if rows:
        columns = list(rows[0])
        places = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        await conn.executemany(
            f"INSERT INTO uacreg ({', '.join(columns)}) VALUES ({places})",
            [tuple(row[c] for c in columns) for row in rows],
        )


def prepare_shared_database(settings: EdgeSettings) -> None:
    """Create the shared tables when missing and load the subscribers; EdgeConfigError."""
    url = settings.shared_db_url
    assert url is not None
    users: list[tuple[str, str, str]] | None = None
    if settings.secrets_file is not None:
        from switch.edge.credentials import load_secrets

        try:
            secrets = load_secrets(settings.secrets_file)
        except CredentialsError as exc:
            raise EdgeConfigError(exc.problems) from exc
        users = [(user, secrets.realm, ha1) for user, ha1 in sorted(secrets.users.items())]
    trunks: list[dict[str, Any]] | None = None
    if settings.trunks.accounts:
        from switch.edge.database import trunk_passwords
        from switch.edge.trunks import uacreg_rows

        trunks = uacreg_rows(settings.trunks, trunk_passwords(settings))
    # Called from synchronous code that may run inside an event loop: a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, _prepare(url, users, trunks)).result(timeout=30)
        except OSError as exc:
            raise EdgeConfigError(f"shared edge database {url!r}: {exc}") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise EdgeConfigError(f"shared edge database {url!r}: {exc}") from exc
