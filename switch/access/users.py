"""The users file: people, their roles and tenants, API tokens, MQTT device logins.

Everything here is pure except :class:`UsersFile`, which reads (with
:mod:`switch.configfile`: ``users.yaml:12:3: key: message, did you mean …``) and
atomically writes the file. The editing verbs (:func:`add_user`, :func:`add_token`, …)
are pure functions ``Users -> Users`` for the CLI.

The users file (default ``var/users.yaml``, mode 0600, never inside a dial plan)::

    options: {metrics: loopback, session_hours: 12, audit_retention_days: 180}
    users:
      alice: {role: owner, tenants: [mueller], person: alice,
              password: "$argon2id$...", totp: null}
    tokens:
      - {id: 3f9c0a1b, user: alice, sha256: "...", tenants: [mueller], label: ha}

May import: switch.access.policy, switch.access.passwords, switch.configfile, switch.errors.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from switch.access.passwords import mosquitto_hash, new_token
from switch.access.policy import Principal, Role
from switch.configfile import read_document, validate
from switch.errors import ConfigProblem, UserError, UsersFileError

DEFAULT_USERS_FILE: Final = Path("var/users.yaml")


class Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # "loopback": /metrics and /healthz answer anyone on 127.0.0.0/8 or ::1 without login
    # (Prometheus on the same host); "token": they need a principal allowed to read them.
    metrics: Literal["loopback", "token"] = "loopback"
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    idle_minutes: float = Field(default=60.0, gt=0)
    audit_retention_days: int = Field(default=180, ge=1)
    # Cookies get "Secure" when the request came over TLS; "always" also behind a TLS proxy.
    secure_cookies: Literal["auto", "always"] = "auto"


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Role
    tenants: tuple[str, ...] = ()
    person: str | None = None  # the person id in the dial plan (own presence)
    password: str  # argon2 PHC string, never the password
    totp: str | None = None  # base32 secret; None until enrolled at first login
    grants: tuple[Literal["recordings"], ...] = ()
    language: Literal["de", "en"] | None = None  # of the pages (issue 18); None: German

    @field_validator("password")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("must be an argon2 hash (use `rufweiche users passwd`)")
        return value


class TokenEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    user: str
    sha256: str
    tenants: tuple[str, ...] = ()
    label: str = ""
    created: str = ""


class MqttDevice(BaseModel):
    """A person's device or app on the broker: ``<tenant>.<person>`` with a Mosquitto hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tenant: str
    person: str
    password: str  # Mosquitto $7$ (PBKDF2-SHA512)


class Users(BaseModel):
    """The whole users file, validated once, then immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    options: Options = Options()
    users: dict[str, User] = Field(default_factory=dict)
    tokens: tuple[TokenEntry, ...] = ()
    mqtt_devices: dict[str, MqttDevice] = Field(default_factory=dict)

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=False)
        header = (
            "# Rufweiche users: edit with `rufweiche users ...` (docs/security.md).\n"
            "# Passwords are argon2 hashes, tokens SHA-256 digests; keep this file 0600.\n"
        )
        return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def with_user(self, name: str, user: User) -> Users:
        return self.model_copy(update={"users": {**self.users, name: user}})

    def principal_for_token(self, digest: str) -> Principal | None:
        for entry in self.tokens:
            if hmac.compare_digest(entry.sha256, digest):
                user = self.users.get(entry.user)
                if user is None:
                    return None
                tenants = frozenset(entry.tenants or user.tenants) & frozenset(user.tenants)
                if user.role is Role.OPS:
                    tenants = frozenset(entry.tenants)
                return Principal(
                    entry.user,
                    user.role,
                    tenants,
                    user.person,
                    frozenset(user.grants),
                    "token",
                    language=user.language,
                )
        return None

    def principal(self, name: str, via: str = "session") -> Principal | None:
        user = self.users.get(name)
        if user is None:
            return None
        return Principal(
            name,
            user.role,
            frozenset(user.tenants),
            user.person,
            frozenset(user.grants),
            via,
            language=user.language,
        )


def check_name(kind: str, value: str) -> str:
    """User names and ids end up in YAML keys, cookies and MQTT user names: keep them plain."""
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_." for c in value):
        raise UserError(f"{kind} {value!r} must be 1-64 letters, digits, '-', '_' or '.'")
    return value


class UsersFile:
    """The users file on disk: :meth:`load` (cached until the file changes), :meth:`save`
    (atomic, 0600). Every running switch and every CLI call reads the same file, so a
    token revoked on the command line stops working with the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: Users | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Users:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return Users()
        except OSError as exc:
            raise self._error(f"cannot read: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._users is not None and stamp == self._stamp:
            return self._users
        if st.st_mode & 0o077:
            raise self._error(f"mode {st.st_mode & 0o777:o} lets others read it; chmod 600 it")
        doc = read_document(self.path, UsersFileError)
        data = doc.data if doc.data is not None else {}
        if not isinstance(data, dict):
            raise UsersFileError([ConfigProblem(str(self.path), 1, 1, "", "must be a mapping")])
        users = validate(Users, data, UsersFileError, doc=doc)
        self._users, self._stamp = users, stamp
        return users

    def _error(self, message: str) -> UsersFileError:
        return UsersFileError([ConfigProblem(str(self.path), 0, 0, "", message)])

    def save(self, users: Users) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".users.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(users.to_yaml())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)  # readers see the old or the new file, never half
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise self._error(f"cannot write: {exc.strerror}") from None
        self._users, self._stamp = None, None


# -- editing (the CLI's verbs; pure functions on Users)


def add_user(
    users: Users,
    name: str,
    *,
    role: Role,
    password_hash: str,
    tenants: Iterable[str] = (),
    person: str | None = None,
    grants: Iterable[str] = (),
) -> Users:
    check_name("user", name)
    if name in users.users:
        raise UserError(f"user {name!r} exists already (use `users passwd` or `users remove`)")
    tenants = tuple(check_name("tenant", t) for t in tenants)
    if role is not Role.OPS and not tenants:
        raise UserError(f"user {name!r}: an {role.value} needs at least one --tenant")
    if role is Role.ASSISTANT and person is None:
        raise UserError(f"user {name!r}: an assistant needs --person (her own presence)")
    user = User(
        role=role,
        tenants=tenants,
        person=person,
        password=password_hash,
        grants=tuple(grants),
    )
    return users.with_user(name, user)


def get_user(users: Users, name: str) -> User:
    user = users.users.get(name)
    if user is None:
        known = ", ".join(sorted(users.users)) or "none"
        raise UserError(f"user {name!r} not found; users: {known}")
    return user


def set_password(users: Users, name: str, password_hash: str, *, reset_totp: bool) -> Users:
    user = get_user(users, name)
    update: dict[str, Any] = {"password": password_hash}
    if reset_totp:
        update["totp"] = None
    return users.with_user(name, user.model_copy(update=update))


def set_totp(users: Users, name: str, secret: str | None) -> Users:
    return users.with_user(name, get_user(users, name).model_copy(update={"totp": secret}))


def remove_user(users: Users, name: str) -> Users:
    get_user(users, name)
    return users.model_copy(
        update={
            "users": {k: v for k, v in users.users.items() if k != name},
            "tokens": tuple(t for t in users.tokens if t.user != name),
        }
    )


def add_token(
    users: Users, name: str, *, label: str, tenants: Iterable[str], now: float
) -> tuple[Users, str, TokenEntry]:
    """A new token for ``name``, limited to ``tenants`` (default: all of the user's)."""
    user = get_user(users, name)
    wanted = tuple(tenants) or user.tenants
    extra = set(wanted) - set(user.tenants)
    if extra and user.role is not Role.OPS:
        raise UserError(f"token for {name!r}: tenant {sorted(extra)[0]!r} is not one of theirs")
    token, digest = new_token()
    entry = TokenEntry(
        id=secrets.token_hex(4),
        user=name,
        sha256=digest,
        tenants=wanted,
        label=label,
        created=datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
    )
    return users.model_copy(update={"tokens": (*users.tokens, entry)}), token, entry


def revoke_token(users: Users, token_id: str) -> Users:
    kept = tuple(t for t in users.tokens if t.id != token_id)
    if len(kept) == len(users.tokens):
        raise UserError(f"token {token_id!r} not found (see `rufweiche users token list`)")
    return users.model_copy(update={"tokens": kept})


def set_mqtt_device(users: Users, tenant: str, person: str, password: str) -> tuple[Users, str]:
    """Create or rotate a device login; returns the MQTT user name ``<tenant>.<person>``."""
    name = f"{check_name('tenant', tenant)}.{check_name('person', person)}"
    device = MqttDevice(tenant=tenant, person=person, password=mosquitto_hash(password))
    return users.model_copy(update={"mqtt_devices": {**users.mqtt_devices, name: device}}), name
