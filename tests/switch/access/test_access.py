"""Pure tests of switch.access: policy and scopes, secrets, lockout, the users file, audit."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher

from switch.access.audit import AuditLog
from switch.access.lockout import Lockout
from switch.access.mosquitto import mosquitto_files
from switch.access.passwords import (
    Passwords,
    mosquitto_hash,
    new_totp_secret,
    token_digest,
    totp_step,
    totp_svg,
    totp_uri,
)
from switch.access.policy import EVERYTHING, Action, Principal, Role, Scope, can, handled_by, scope
from switch.access.users import (
    Users,
    UsersFile,
    add_token,
    add_user,
    get_user,
    remove_user,
    revoke_token,
    set_mqtt_device,
)
from switch.errors import AccessError, ConfigError, UserError, UsersFileError

A = Action
OWN, OTHER = "mueller", "schmidt"

# The policy as docs/security.md states it: (action, where) pairs each role may do.
# "own": a tenant of theirs; "other": someone else's; "none": no tenant / all tenants.
ALLOWED: dict[str, set[tuple[Action, str]]] = {
    "owner": {
        (a, "own")
        for a in (
            A.VIEW_DASHBOARD,
            A.READ_PRESENCE,
            A.SET_PRESENCE,
            A.READ_CALLS,
            A.READ_USAGE,
            A.READ_DIALPLAN,
            A.RELOAD_DIALPLAN,
            A.READ_RECORDINGS,
            A.READ_MESSAGES,
            A.DONE_MESSAGE,
            A.VIEW_OWNER_PAGE,
            A.SET_OVERRIDE,
            A.PLACE_CALL,
        )
    },
    "assistant": {
        (a, "own")
        for a in (
            A.VIEW_DASHBOARD,
            A.READ_PRESENCE,
            A.READ_CALLS,
            A.TAKE_MESSAGE,
            A.READ_MESSAGES,
            A.VIEW_CONSOLE,
            A.PLACE_CALL,
        )
    },
    "ops": {
        *(
            (a, where)
            for a in (A.VIEW_DASHBOARD, A.READ_PRESENCE, A.READ_CALLS, A.READ_USAGE)
            for where in ("own", "other", "none")
        ),
        *((A.READ_DIALPLAN, w) for w in ("own", "other", "none")),
        *((a, "none") for a in (A.READ_METRICS, A.READ_HEALTH, A.READ_AUDIT, A.RELOAD_DIALPLAN)),
    },
}

PRINCIPALS = {
    "owner": Principal("otto", Role.OWNER, frozenset({OWN}), "otto"),
    "assistant": Principal("anna", Role.ASSISTANT, frozenset({OWN}), "anna"),
    "ops": Principal("olga", Role.OPS, frozenset()),
}
WHERE = {"own": OWN, "other": OTHER, "none": None}


@pytest.mark.parametrize("role", sorted(PRINCIPALS))
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("where", sorted(WHERE))
def test_scope_table(role: str, action: Action, where: str) -> None:
    who = PRINCIPALS[role]
    expected = (action, where) in ALLOWED[role]
    # presence of somebody else (not the principal's own person)
    assert can(who, action, WHERE[where], "bob") is expected


def test_assistant_sets_only_her_own_presence() -> None:
    anna = PRINCIPALS["assistant"]
    assert can(anna, A.SET_PRESENCE, OWN, "anna")
    assert not can(anna, A.SET_PRESENCE, OWN, "otto")
    assert not can(anna, A.SET_PRESENCE, OTHER, "anna")
    assert not can(anna, A.SET_PRESENCE, OWN, None)


def test_recordings_only_when_granted() -> None:
    plain = PRINCIPALS["ops"]
    granted = Principal("rita", Role.OPS, frozenset(), grants=frozenset({"recordings"}))
    assert not can(plain, A.READ_RECORDINGS, OWN)
    assert can(granted, A.READ_RECORDINGS, OWN)
    assert can(granted, A.READ_RECORDINGS, None)
    scoped_ops = Principal("sam", Role.OPS, frozenset({OWN}))
    assert can(scoped_ops, A.READ_CALLS, OWN)
    assert not can(scoped_ops, A.READ_CALLS, OTHER)
    assert not can(scoped_ops, A.READ_CALLS, None)  # not "all tenants"
    assert can(scoped_ops, A.READ_METRICS, None)


def test_handled_by() -> None:
    assert handled_by({"answered_by": "anna.desk"}, "anna")
    assert handled_by({"answered_by": "anna"}, "anna")
    assert not handled_by({"answered_by": "annabel.desk"}, "anna")
    assert not handled_by({"answered_by": None}, "anna")
    assert not handled_by({"answered_by": "anna"}, None)


# -- secrets


CHEAP = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_passwords() -> None:
    stored = CHEAP.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert CHEAP.verify(stored, "correct horse battery")
    assert not CHEAP.verify(stored, "correct horse batterY")
    assert not CHEAP.verify("garbage", "x")
    with pytest.raises(UserError, match="too short: 5"):
        CHEAP.hash("short")


def test_totp_step_window_and_format() -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_015.0
    step = int(now) // 30
    assert totp_step(secret, totp.at(now), now) == step
    assert totp_step(secret, totp.at(now - 30), now) == step - 1  # drift, RFC 6238 §5.2
    assert totp_step(secret, totp.at(now - 90), now) is None
    code = totp.at(now)
    assert totp_step(secret, f"{code[:3]} {code[3:]}", now) == step
    assert totp_step(secret, "12345", now) is None
    assert totp_step(secret, "abcdef", now) is None
    uri = totp_uri(secret, "otto")
    assert uri.startswith("otpauth://totp/Rufweiche:otto?secret=" + secret)
    assert totp_svg(uri).startswith("<svg")


def test_tokens_are_scoped_and_revocable() -> None:
    users = Users()
    users = add_user(
        users, "otto", role=Role.OWNER, password_hash=CHEAP.hash("x" * 12), tenants=[OWN, "b"]
    )
    users, token, entry = add_token(users, "otto", label="ha", tenants=[OWN], now=0)
    assert token.startswith("rwt_")
    assert len(token) > 40
    assert entry.sha256 == token_digest(token)
    assert token not in users.to_yaml()
    who = users.principal_for_token(token_digest(token))
    assert who is not None
    assert who.tenants == {OWN}
    assert who.via == "token"
    with pytest.raises(UserError, match="'schmidt' is not one of theirs"):
        add_token(users, "otto", label="", tenants=[OTHER], now=0)
    assert users.principal_for_token(token_digest(token + "x")) is None
    revoked = revoke_token(users, entry.id)
    assert revoked.principal_for_token(token_digest(token)) is None
    with pytest.raises(UserError, match="not found"):
        revoke_token(revoked, entry.id)
    # removing the user removes their tokens
    assert remove_user(users, "otto").tokens == ()


def test_add_user_checks() -> None:
    h = CHEAP.hash("x" * 12)
    with pytest.raises(UserError, match="needs at least one --tenant"):
        add_user(Users(), "otto", role=Role.OWNER, password_hash=h)
    with pytest.raises(UserError, match="needs --person"):
        add_user(Users(), "anna", role=Role.ASSISTANT, password_hash=h, tenants=[OWN])
    with pytest.raises(UserError, match="user 'a b'"):
        add_user(Users(), "a b", role=Role.OPS, password_hash=h)
    users = add_user(Users(), "olga", role=Role.OPS, password_hash=h)
    with pytest.raises(UserError, match="exists already"):
        add_user(users, "olga", role=Role.OPS, password_hash=h)
    with pytest.raises(UserError, match="'nobody' not found; users: olga"):
        get_user(users, "nobody")


# -- lockout


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_backs_off_and_forgets() -> None:
    clock = Clock()
    lock = Lockout(clock, threshold=3, base=10, cap=40, forget=100)
    for _ in range(2):
        assert lock.failed("user:a", "ip:1") == 0
    assert lock.failed("user:a", "ip:1") == 10  # third failure: locked 10 s
    assert lock.retry_after("user:a") == 10
    assert lock.retry_after("ip:1", "user:b") == 10
    assert lock.retry_after("user:b") == 0
    clock.now += 10
    assert lock.retry_after("user:a") == 0
    assert lock.failed("user:a") == 20  # doubling
    clock.now += 20
    assert lock.failed("user:a") == 40
    clock.now += 40
    assert lock.failed("user:a") == 40  # capped
    lock.succeeded("user:a")
    assert lock.failures("user:a") == 0
    assert lock.failures("ip:1") == 3
    clock.now += 101
    assert lock.failures("ip:1") == 0  # forgotten after a quiet period


# -- the file


def test_users_file_roundtrip_mode_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "var" / "users.yaml"
    f = UsersFile(path)
    assert f.load() == Users()
    users = add_user(Users(), "olga", role=Role.OPS, password_hash=CHEAP.hash("p" * 12))
    f.save(users)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f.load() == users
    other = UsersFile(path)  # another process (the CLI) changes it
    other.save(remove_user(users, "olga"))
    assert f.load().users == {}
    os.chmod(path, 0o644)
    with pytest.raises(UsersFileError, match="mode 644 lets others read it"):
        UsersFile(path).load()
    os.chmod(path, 0o600)
    path.write_text("users:\n  x: {role: boss, password: '$argon2id$x'}\n")
    with pytest.raises(UsersFileError, match=r"users\.x\.role"):
        UsersFile(path).load()
    path.write_text("users:\n  x: {role: ops, password: plain}\n")
    with pytest.raises(UsersFileError, match="must be an argon2 hash"):
        UsersFile(path).load()


# -- MQTT files


def test_mosquitto_files_shape() -> None:
    users, name = set_mqtt_device(Users(), OWN, "otto", "device-secret")
    assert name == "mueller.otto"
    passwd, acl = mosquitto_files(users, switch_user="rufweiche", switch_password="s" * 16)
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["rufweiche", "mueller.otto"]
    assert "user mueller.otto\n" in acl
    assert "topic write rufweiche/v1/mueller/person/otto/presence/set" in acl
    assert "topic write rufweiche/v1/mueller/person/otto/override/set" in acl  # issue 18
    assert "topic read rufweiche/v1/mueller/#" in acl
    assert "schmidt" not in acl


@pytest.mark.peer
def test_mosquitto_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    """Same password and salt: our $7$ line equals the one mosquitto_passwd writes."""
    path = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(path), "dev", "pa55word"], check=True, timeout=10
    )
    _, line = path.read_text().strip().split(":", 1)
    _, seven, iterations, salt, _digest = line.split("$")
    assert seven == "7"
    ours = mosquitto_hash("pa55word", salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == line


# -- audit


def test_audit_appends_and_prunes(tmp_path: Path) -> None:
    clock = Clock()
    clock.now = 1_800_000_000.0
    log = AuditLog(tmp_path / "audit.jsonl", retention_days=2, clock=clock)
    log.write("login", who="otto", source="127.0.0.1")
    clock.now += 86400 * 1.5
    log.write("presence_set", who="otto", source="::1", tenant=OWN, person="otto", state="away")
    events = log.read()
    assert [e["event"] for e in events] == ["login", "presence_set"]
    assert events[1] == {
        "at": "2027-01-16T20:00:00.000Z",
        "event": "presence_set",
        "who": "otto",
        "from": "::1",
        "tenant": OWN,
        "person": "otto",
        "state": "away",
    }
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o600
    clock.now += 86400 * 1.0  # the login is now 2.5 days old; a prune is due
    log.write("logout", who="otto")
    assert [e["event"] for e in log.read()] == ["presence_set", "logout"]
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert all(json.loads(line)["at"].endswith("Z") for line in lines)


# -- scopes (what the guard hands the handlers)


def test_scope_is_the_tenants_an_action_may_see() -> None:
    owner = Principal("otto", Role.OWNER, frozenset({"mueller", "bau"}), "otto")
    anna = Principal("anna", Role.ASSISTANT, frozenset({"mueller"}), "anna")
    olga = Principal("olga", Role.OPS, frozenset())
    scoped_ops = Principal("ops2", Role.OPS, frozenset({"bau"}))
    assert scope(owner, Action.READ_CALLS) == Scope(frozenset({"mueller", "bau"}))
    assert scope(olga, Action.READ_CALLS) == EVERYTHING
    assert scope(olga, Action.READ_RECORDINGS) == Scope(frozenset())  # no grant
    assert scope(scoped_ops, Action.READ_USAGE) == Scope(frozenset({"bau"}))
    # An assistant reads only the calls she answered, but sees her tenants' presence.
    assert scope(anna, Action.READ_CALLS) == Scope(frozenset({"mueller"}), answered_by="anna")
    assert scope(anna, Action.READ_PRESENCE) == Scope(frozenset({"mueller"}))
    assert scope(anna, Action.READ_RECORDINGS) == Scope(frozenset())
    calls = scope(anna, Action.READ_CALLS)
    assert calls.keeps({"tenant": "mueller", "answered_by": "anna.desk"})
    assert not calls.keeps({"tenant": "mueller", "answered_by": "otto"})
    assert not calls.keeps({"tenant": "bau", "answered_by": "anna"})
    nameless = Principal("x", Role.ASSISTANT, frozenset({"mueller"}))
    assert not scope(nameless, Action.READ_CALLS).keeps({"tenant": "mueller", "answered_by": ""})
    # ?tenant= narrows, never widens
    assert Scope(frozenset({"mueller"})).narrowed("bau") == Scope(frozenset())
    assert Scope(frozenset()).narrowed("bau") == Scope(frozenset())
    assert EVERYTHING.narrowed("bau") == Scope(frozenset({"bau"}))
    assert EVERYTHING.narrowed(None) is EVERYTHING
    assert EVERYTHING.sees(None)
    assert not Scope(frozenset({"a"})).sees(None)


def test_users_file_errors_name_line_column_and_key(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(
        "options:\n  metrix: token\nusers:\n  x: {role: boss, password: '$argon2id$x'}\n"
    )
    os.chmod(path, 0o600)
    with pytest.raises(UsersFileError) as caught:
        UsersFile(path).load()
    assert str(caught.value).splitlines() == [
        f"{path}:2:3: options.metrix: unknown key, did you mean 'metrics'?",
        f"{path}:4:7: users.x.role: Input should be 'owner', 'assistant' or 'ops'",
    ]
    error = caught.value
    assert isinstance(error, AccessError)
    assert isinstance(error, ConfigError)
    assert (error.line, error.column, error.key) == (2, 3, "options.metrix")
