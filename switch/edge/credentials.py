"""Credentials of the people's phones: a YAML file of user → HA1, never a password.

The edge (Kamailio, ``auth_db``) checks digests against HA1 = md5(user:realm:password)
(RFC 2617 §3.2.2.2), so the password itself is needed only once, when a user is added::

    realm: office
    users:
      alice: 8f1f5d0c0f0d3c1f2b6c2b9a4a4b8a55

The file is written with mode 0600. ``python -m switch.edge.credentials FILE USER --realm office``
(the command is :func:`switch.cli.edge.credentials_main`) asks for the password and stores its
HA1. :func:`switch.edge.database.write_subscriber_table` copies it into the edge's database.

Errors: every failure is a :class:`switch.errors.CredentialsError`; a bad file reads
``secrets.yaml:4:3: users.alice: ...`` (loaded through :mod:`switch.configfile`).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from switch import configfile
from switch.errors import CredentialsError

# A SIP user part we accept for a phone: what dial plans use (names, extensions).
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
HA1_PATTERN = r"^[0-9a-f]{32}$"
_USER = re.compile(USER_PATTERN)


class Secrets(BaseModel):
    """The validated content of a secrets file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    realm: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")]
    users: dict[
        Annotated[str, Field(pattern=USER_PATTERN)], Annotated[str, Field(pattern=HA1_PATTERN)]
    ] = Field(default_factory=dict)
    # SIP trunk passwords by trunk name (docs/trunks.md): uac needs the password itself to
    # answer a provider's challenge; this file (0600) is the only place it is written down.
    trunks: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")],
        Annotated[str, Field(min_length=1, max_length=64)],
    ] = Field(default_factory=dict)


def ha1(user: str, realm: str, password: str) -> str:
    """HA1 of RFC 2617 §3.2.2.2 for the MD5 algorithm: md5(user:realm:password)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def load_secrets(path: Path) -> Secrets:
    """The validated secrets file; :class:`CredentialsError` with ``file:line:col`` problems."""
    return configfile.load(path, Secrets, CredentialsError)


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
        raise CredentialsError(f"{path}: cannot write secrets: {exc.strerror}") from exc


def add_user(path: Path, user: str, password: str, realm: str | None = None) -> Secrets:
    """Add or replace ``user`` in the secrets file at ``path`` (created when missing).

    ``realm`` is required for a new file; for an existing one it must match the file's.
    """
    if not _USER.match(user):
        raise CredentialsError(f"{path}: user {user!r} is not a valid SIP user name")
    if not password:
        raise CredentialsError(f"{path}: empty password for user {user!r}")
    if path.exists():
        current = load_secrets(path)
        if realm is not None and realm != current.realm:
            raise CredentialsError(
                f"{path}: realm {realm!r} differs from the file's {current.realm!r}"
            )
    elif realm is None:
        raise CredentialsError(f"{path}: a new secrets file needs a realm")
    else:
        current = Secrets(realm=realm)
    users = dict(current.users)
    users[user] = ha1(user, current.realm, password)
    updated = Secrets(realm=current.realm, users=users, trunks=current.trunks)
    save_secrets(path, updated)
    return updated


if __name__ == "__main__":  # python -m switch.edge.credentials: the command is in the CLI
    import importlib

    importlib.import_module("switch.cli.edge").credentials_main()
