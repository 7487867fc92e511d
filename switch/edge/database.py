"""The edge's SQLite database: the tables Kamailio needs, the subscribers, stale presence.

Kamailio owns this file at run time (registrar, subscriber, presence, pipelimit); the switch
only creates the tables from kamailio-sqlite-modules' schemas, fills ``subscriber`` from the
secrets file (:mod:`switch.edge.credentials`) and forgets presence documents of a past run.
It is not the calls database (that one is switch/records/ alone).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from switch.edge.settings import EdgeSettings
from switch.edge.trunks import uacreg_rows
from switch.errors import CredentialsError, EdgeConfigError

if TYPE_CHECKING:
    from switch.edge.credentials import Secrets

SCHEMA_DIR = Path("/usr/share/kamailio/db_sqlite")
# Tables the edge uses: version (standard), subscriber, location, presence, pl_pipes.
SCHEMAS = ("standard", "auth_db", "usrloc", "presence", "pipelimit")


def prepare_database(settings: EdgeSettings, db: Path) -> None:
    """Create the tables Kamailio needs when missing, and load the subscribers."""
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "version" not in have:
                for name in SCHEMAS:
                    script = (SCHEMA_DIR / f"{name}-create.sql").read_text(encoding="utf-8")
                    conn.executescript(script)
        # WAL (kept in the file): Kamailio's db_sqlite sets no busy timeout, so in the
        # rollback-journal mode any open read (auth_db in another Kamailio process, the
        # dashboard) made a registrar or presence write fail at once with "database is
        # locked" and the phone got a 500. In WAL, readers and the writer do not block.
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except OSError as exc:
        raise EdgeConfigError(
            f"edge database schema {exc.filename!r}: {exc.strerror}"
            " (install kamailio-sqlite-modules)"
        ) from exc
    except sqlite3.Error as exc:
        raise EdgeConfigError(f"edge database {str(db)!r}: {exc}") from exc
    if settings.secrets_file is not None:
        try:
            # Imported here: `python -m switch.edge.credentials` must find it not yet loaded.
            from switch.edge.credentials import load_secrets

            secrets = load_secrets(settings.secrets_file)
            if secrets.realm != settings.domain:
                raise EdgeConfigError(
                    f"{settings.secrets_file}: realm {secrets.realm!r} is not the edge domain"
                    f" {settings.domain!r}: every HA1 would be wrong"
                )
            write_subscriber_table(db, secrets)
        except CredentialsError as exc:
            raise EdgeConfigError(exc.problems) from exc
    if settings.trunks.accounts and not settings.shared_db_url:
        write_uacreg_table(db, settings)  # shared: switch/edge/shared_db.py writes them


def forget_presence(db: Path) -> None:
    """Drop published documents of an earlier run (tables presentity, pua). The switch
    publishes every person again after each start (presence/sip.py); a stale document with
    an ETag no one holds would otherwise live on until it expires."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("DELETE FROM presentity")
            conn.execute("DELETE FROM pua")
    except sqlite3.Error as exc:
        raise EdgeConfigError(f"edge database {str(db)!r}: {exc}") from exc


def write_subscriber_table(db_path: Path, secrets: Secrets) -> int:
    """Replace the rows of ``subscriber`` by the users of ``secrets``; returns their number.

    Only ``ha1`` is filled: the ``password`` column stays empty (``calculate_ha1`` is off).
    """
    try:
        with closing(sqlite3.connect(db_path)) as db, db:
            db.execute("DELETE FROM subscriber")
            db.executemany(
                "INSERT INTO subscriber(username, domain, password, ha1, ha1b)"
                " VALUES (?, ?, '', ?, '')",
                [(user, secrets.realm, value) for user, value in sorted(secrets.users.items())],
            )
        return len(secrets.users)
    except sqlite3.Error as exc:
        raise EdgeConfigError(f"{db_path}: cannot write the subscriber table: {exc}") from exc


# ------------------------------------------------ trunks: uac's uacreg table (docs/trunks.md)

UAC_SCHEMA = SCHEMA_DIR / "uac-create.sql"


def trunk_passwords(settings: EdgeSettings) -> dict[str, str]:
    """Every trunk's password from the secrets file; EdgeConfigError names the missing."""
    names = [t.name for t in settings.trunks.accounts]
    if settings.secrets_file is None:
        raise EdgeConfigError(
            f"trunks {names}: their passwords go into the secrets file (edge.secrets_file,"
            " key trunks: {name: password}); none is configured"
        )
    from switch.edge.credentials import load_secrets

    try:
        secrets = load_secrets(settings.secrets_file)
    except CredentialsError as exc:
        raise EdgeConfigError(exc.problems) from exc
    missing = [n for n in names if n not in secrets.trunks]
    if missing:
        raise EdgeConfigError(
            f"{settings.secrets_file}: no password for trunk(s) {missing}"
            " (add them under trunks: {name: password})"
        )
    return dict(secrets.trunks)


def write_uacreg_table(db: Path, settings: EdgeSettings) -> int:
    """Replace ``uacreg`` by the trunks of ``settings``; returns the number of rows."""
    rows = uacreg_rows(settings.trunks, trunk_passwords(settings))
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "uacreg" not in have:
                conn.executescript(UAC_SCHEMA.read_text(encoding="utf-8"))
            conn.execute("DELETE FROM uacreg")
            if rows:
                columns = list(rows[0])
                conn.executemany(
                    f"INSERT INTO uacreg({', '.join(columns)})"
                    f" VALUES ({', '.join('?' for _ in columns)})",
                    [tuple(row[c] for c in columns) for row in rows],
                )
        os.chmod(db, 0o600)
    except OSError as exc:
        raise EdgeConfigError(f"edge database {str(db)!r}: {exc}") from exc
    except sqlite3.Error as exc:
        raise EdgeConfigError(f"edge database {str(db)!r}: uacreg: {exc}") from exc
    return len(rows)
