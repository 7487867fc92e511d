"""Who may see and change what: people, roles, tenants, passwords, TOTP, tokens, lockout.

Theory of operation
-------------------
Everything here is pure except :class:`UsersFile`, which reads and (atomically) writes
the users file. The HTTP side (:mod:`switch.web.guard`) asks three questions:

* *who is this?* — a password (argon2id, :class:`Passwords`) plus a TOTP code
  (RFC 6238, :func:`totp_ok`) gives a session; a bearer token (:func:`token_digest`)
  gives a :class:`Principal` directly;
* *may they?* — :func:`can` ``(principal, action, tenant, person)`` is one table,
  :data:`RULES`, read top to bottom; nothing else in the code decides scope;
* *are they hammering the door?* — :class:`Lockout` counts failures per user and per
  source address with an injected clock and answers how long to refuse.

Roles (docs/security.md):

========== =================================================================
owner      his own tenants: dial plans, calls, reports, presence of his people
assistant  the tenants her service answers for: the presence board, the calls
           she handled, her own presence
ops        everything operational, all tenants' figures; recordings only when
           granted (``grants: [recordings]``)
========== =================================================================

The users file (default ``var/users.yaml``, mode 0600, never inside a dial plan)::

    options: {metrics: loopback, session_hours: 12, audit_retention_days: 180}
    users:
      alice: {role: owner, tenants: [mueller], person: alice,
              password: "$argon2id$...", totp: null}
    tokens:
      - {id: 3f9c0a1b, user: alice, sha256: "...", tenants: [mueller], label: ha}

Tokens are 32 random bytes: a plain SHA-256 of them is as good as a slow hash (nobody
can guess 256 bits), and it lets the lookup be one dict access.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

import pyotp
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_USERS_FILE: Final = Path("var/users.yaml")
TOKEN_PREFIX: Final = "rwt_"
MIN_PASSWORD: Final = 10


class AuthError(Exception):
    """Base of this module's errors; ``str()`` is the message for the operator."""


class UsersFileError(AuthError):
    """The users file cannot be read, parsed or written."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class UserError(AuthError):
    """A command on users or tokens names something that does not exist or is not valid."""


class Role(StrEnum):
    OWNER = "owner"
    ASSISTANT = "assistant"
    OPS = "ops"


class Action(StrEnum):
    VIEW_DASHBOARD = "dashboard.view"
    READ_PRESENCE = "presence.read"
    SET_PRESENCE = "presence.set"
    READ_CALLS = "calls.read"
    READ_USAGE = "usage.read"  # reports: calls and service minutes per month
    READ_DIALPLAN = "dialplan.read"
    RELOAD_DIALPLAN = "dialplan.reload"
    READ_RECORDINGS = "recordings.read"
    READ_METRICS = "metrics.read"
    READ_HEALTH = "health.read"
    READ_AUDIT = "audit.read"


# -- the model -----------------------------------------------------------------------------


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
                    entry.user, user.role, tenants, user.person, frozenset(user.grants), "token"
                )
        return None

    def principal(self, name: str, via: str = "session") -> Principal | None:
        user = self.users.get(name)
        if user is None:
            return None
        return Principal(
            name, user.role, frozenset(user.tenants), user.person, frozenset(user.grants), via
        )


def check_name(kind: str, value: str) -> str:
    """User names and ids end up in YAML keys, cookies and MQTT user names: keep them plain."""
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_." for c in value):
        raise UserError(f"{kind} {value!r} must be 1-64 letters, digits, '-', '_' or '.'")
    return value


# -- scope ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone who proved who they are, for one request."""

    name: str
    role: Role
    tenants: frozenset[str]  # for ops: empty means all tenants
    person: str | None = None
    grants: frozenset[str] = frozenset()
    via: str = "session"  # "session", "token" or "open" (no users file)

    def sees_tenant(self, tenant: str | None) -> bool:
        """``tenant`` None: all tenants (only an ops principal not scoped to some)."""
        if self.role is Role.OPS and not self.tenants:
            return True
        return tenant is not None and tenant in self.tenants


_OWN_TENANT: Final = frozenset(
    {
        Action.VIEW_DASHBOARD,
        Action.READ_PRESENCE,
        Action.SET_PRESENCE,
        Action.READ_CALLS,
        Action.READ_USAGE,
        Action.READ_DIALPLAN,
        Action.RELOAD_DIALPLAN,
        Action.READ_RECORDINGS,
    }
)
_ASSISTANT: Final = frozenset({Action.VIEW_DASHBOARD, Action.READ_PRESENCE, Action.READ_CALLS})
_OPS_GLOBAL: Final = frozenset(
    {Action.READ_METRICS, Action.READ_HEALTH, Action.READ_AUDIT, Action.RELOAD_DIALPLAN}
)
_OPS_ANY_TENANT: Final = frozenset(
    {
        Action.VIEW_DASHBOARD,
        Action.READ_PRESENCE,
        Action.READ_CALLS,
        Action.READ_USAGE,
        Action.READ_DIALPLAN,
    }
)

# The whole policy, one line per role. ``tenant`` None means "no tenant" (metrics) or
# "all tenants" (an unfiltered list): only ops get those. Calls an assistant may read are
# further narrowed to the ones she answered (:func:`handled_by`), by the HTTP layer.
RULES: Final[dict[Role, Callable[[Principal, Action, str | None, str | None], bool]]] = {
    Role.OWNER: lambda p, a, t, _person: a in _OWN_TENANT and t is not None and t in p.tenants,
    Role.ASSISTANT: lambda p, a, t, person: (
        t is not None
        and t in p.tenants
        and (
            a in _ASSISTANT
            or (a is Action.SET_PRESENCE and person is not None and person == p.person)
        )
    ),
    Role.OPS: lambda p, a, t, _person: (
        # metrics, health, audit, reloads: no tenant; an ops token scoped to some tenants
        # still reads these global figures
        (a in _OPS_GLOBAL and t is None)
        # "all tenants" (t None) only when not scoped to some
        or (a in _OPS_ANY_TENANT and p.sees_tenant(t))
        or (a is Action.READ_RECORDINGS and "recordings" in p.grants and p.sees_tenant(t))
    ),
}


def can(
    principal: Principal, action: Action, tenant: str | None, person: str | None = None
) -> bool:
    """May ``principal`` do ``action`` on ``tenant`` (and ``person``, for presence)?"""
    return RULES[principal.role](principal, action, tenant, person)


def handled_by(call: Mapping[str, Any], person: str | None) -> bool:
    """Did ``person`` answer this call (``answered_by`` is ``person`` or ``person.device``)?"""
    answered = call.get("answered_by")
    return bool(person) and isinstance(answered, str) and answered.split(".", 1)[0] == person


# -- secrets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passwords:
    """argon2id (RFC 9106) with the library's defaults; tests may pass cheaper costs."""

    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    _dummy: list[str] = field(default_factory=list, repr=False, compare=False)

    def hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise UserError(f"password is too short: {len(password)} < {MIN_PASSWORD} characters")
        return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def dummy_verify(self) -> None:
        """Spend the time of a verify for an unknown user, so timing does not tell
        (against a hash made with the same costs, once)."""
        if not self._dummy:
            self._dummy.append(self.hasher.hash(secrets.token_hex(16)))
        self.verify(self._dummy[0], "not-the-password")


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits, RFC 4226 §4 R6 recommends at least that


def totp_uri(secret: str, user: str, issuer: str = "Rufweiche") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=issuer)


def totp_step(secret: str, code: str, now: float, window: int = 1) -> int | None:
    """The RFC 6238 time step (30 s) whose code ``code`` is, within ``window`` steps either
    side of ``now`` (§5.2: allow for clock drift), or None. The caller keeps the last step
    used per user and refuses it again: a code is good once (§5.2)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now) // totp.interval
    for candidate in sorted(range(step - window, step + window + 1), key=lambda s: abs(s - step)):
        if hmac.compare_digest(totp.at(candidate * totp.interval), code):
            return candidate
    return None


def totp_ok(secret: str, code: str, now: float, window: int = 1) -> bool:
    return totp_step(secret, code, now, window) is not None


def totp_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (segno: pure Python, no image library)."""
    import segno

    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#17202c"))


def new_token() -> tuple[str, str]:
    """(the token to show once, its SHA-256 hex digest to store)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = 101) -> str:
    """Mosquitto's password-file format ``$7$`` (PBKDF2-SHA512), as ``mosquitto_passwd``
    2.0 writes it: ``$7$<iterations>$<base64 salt>$<base64 hash>``."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


# -- lockout -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class Lockout:
    """Failed logins per key ("user:alice", "ip:10.0.0.7"): after ``threshold`` failures the
    key is refused for ``base`` seconds, doubling with every further failure up to ``cap``.
    A success clears the user's key; a quiet ``forget`` period clears any key."""

    clock: Callable[[], float]
    threshold: int = 5
    base: float = 30.0
    cap: float = 900.0
    forget: float = 3600.0
    _keys: dict[str, _Failures] = field(default_factory=dict)

    def _get(self, key: str) -> _Failures:
        now = self.clock()
        entry = self._keys.get(key)
        if entry is None or (now - entry.last > self.forget and now >= entry.locked_until):
            entry = self._keys[key] = _Failures()
        return entry

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: go ahead)."""
        now = self.clock()
        return max((max(0.0, self._get(k).locked_until - now) for k in keys), default=0.0)

    def failures(self, key: str) -> int:
        return self._get(key).count

    def failed(self, *keys: str) -> float:
        """Count one failure on each key; returns the longest lock now in force."""
        now = self.clock()
        for key in keys:
            entry = self._get(key)
            entry.count += 1
            entry.last = now
            over = entry.count - self.threshold
            if over >= 0:
                entry.locked_until = now + min(self.cap, self.base * 2**over)
        if len(self._keys) > 10_000:  # a spray from many addresses must not grow us forever
            self._keys = {k: v for k, v in self._keys.items() if v.locked_until > now}
        return self.retry_after(*keys)

    def succeeded(self, key: str) -> None:
        self._keys.pop(key, None)


# -- the file ------------------------------------------------------------------------------


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
            raise UsersFileError(self.path, f"cannot read: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._users is not None and stamp == self._stamp:
            return self._users
        if st.st_mode & 0o077:
            raise UsersFileError(
                self.path, f"mode {st.st_mode & 0o777:o} lets others read it; chmod 600 it"
            )
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UsersFileError(self.path, f"not valid YAML: {exc}") from None
        try:
            users = Users.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
            )
            raise UsersFileError(self.path, problems) from None
        self._users, self._stamp = users, stamp
        return users

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
            raise UsersFileError(self.path, f"cannot write: {exc.strerror}") from None
        self._users, self._stamp = None, None


# -- editing (the CLI's verbs; pure functions on Users) -------------------------------------


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


# -- Mosquitto files -----------------------------------------------------------------------


def mosquitto_files(
    users: Users, *, switch_user: str, switch_password: str, prefix: str = "rufweiche/v1"
) -> tuple[str, str]:
    """(password file, ACL file) for Mosquitto 2.0 (mosquitto.conf(5): ``password_file``,
    ``acl_file``). The switch may do everything; a person's device may read its tenant's
    topics and the status, and write only its own ``…/presence/set``."""
    check_name("MQTT user", switch_user)
    passwd = [f"{switch_user}:{mosquitto_hash(switch_password)}"]
    acl = [
        "# Written by `rufweiche users mqtt-files`; edits are lost on the next run.",
        "# An ACL file denies whatever it does not allow (mosquitto.conf(5)).",
        "",
        f"user {switch_user}",
        "topic readwrite #",
    ]
    for name, device in sorted(users.mqtt_devices.items()):
        passwd.append(f"{name}:{device.password}")
        acl += [
            "",
            f"user {name}",
            f"topic read {prefix}/status",
            f"topic read {prefix}/{device.tenant}/#",
            f"topic write {prefix}/{device.tenant}/person/{device.person}/presence/set",
        ]
    return "\n".join(passwd) + "\n", "\n".join(acl) + "\n"
