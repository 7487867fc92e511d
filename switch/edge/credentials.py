"""Credentials of the people's phones: a YAML file of user → HA1, never a password.

The edge (Kamailio, ``auth_db``) checks digests against HA1 = md5(user:realm:password)
(RFC 2617 §3.2.2.2), so the password itself is needed only once, when a user is added::

    realm: office
    users:
      alice: 8f1f5d0c0f0d3c1f2b6c2b9a4a4b8a55

The file is written with mode 0600. ``python -m switch.edge.credentials FILE USER --realm office``
asks for the password and stores its HA1. ``write_subscriber_table`` copies it into the
``subscriber`` table of the edge's SQLite database (the schema from kamailio-sqlite-modules).

Errors: every failure is a :class:`SecretsError` whose message names the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# A SIP user part we accept for a phone: what dial plans use (names, extensions).
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
HA1_PATTERN = r"^[0-9a-f]{32}$"
_USER = re.compile(USER_PATTERN)


class SecretsError(Exception):
    """The secrets file cannot be read, parsed or written; ``str()`` is for the operator."""


class Secrets(BaseModel):
    """The validated content of a secrets file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    realm: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")]
    users: dict[
        Annotated[str, Field(pattern=USER_PATTERN)], Annotated[str, Field(pattern=HA1_PATTERN)]
    ] = Field(default_factory=dict)


def ha1(user: str, realm: str, password: str) -> str:
    """HA1 of RFC 2617 §3.2.2.2 for the MD5 algorithm: md5(user:realm:password)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def load_secrets(path: Path) -> Secrets:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretsError(f"{path}: cannot read secrets: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SecretsError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Secrets.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise SecretsError("\n".join(lines)) from None


def save_secrets(path: Path, secrets: Secrets) -> None:
    """Write atomically with mode 0600 (the file is as good as the passwords for SIP)."""
    text = yaml.safe_dump(secrets.model_dump(), sort_keys=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise SecretsError(f"{path}: cannot write secrets: {exc.strerror}") from exc


def add_user(path: Path, user: str, password: str, realm: str | None = None) -> Secrets:
    """Add or replace ``user`` in the secrets file at ``path`` (created when missing).

    ``realm`` is required for a new file; for an existing one it must match the file's.
    """
    if not _USER.match(user):
        raise SecretsError(f"{path}: user {user!r} is not a valid SIP user name")
    if not password:
        raise SecretsError(f"{path}: empty password for user {user!r}")
    if path.exists():
        current = load_secrets(path)
        if realm is not None and realm != current.realm:
            raise SecretsError(f"{path}: realm {realm!r} differs from the file's {current.realm!r}")
    elif realm is None:
        raise SecretsError(f"{path}: a new secrets file needs a realm")
    else:
        current = Secrets(realm=realm)
    users = dict(current.users)
    users[user] = ha1(user, current.realm, password)
    updated = Secrets(realm=current.realm, users=users)
    save_secrets(path, updated)
    return updated


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
        raise SecretsError(f"{db_path}: cannot write the subscriber table: {exc}") from exc


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("user")
@click.option("--realm", help="The edge domain (EdgeSettings.domain); needed for a new file.")
@click.password_option(help="Asked for when not given; only its HA1 is stored.")
def main(path: Path, user: str, realm: str | None, password: str) -> None:
    """Add USER (or set a new password) in the secrets file PATH."""
    try:
        add_user(path, user, password, realm=realm)
    except SecretsError as exc:
        click.echo(f"secrets: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{path}: {user} saved (HA1 only); restart or re-render the edge to load it")


if __name__ == "__main__":
    main()
