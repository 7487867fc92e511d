"""`rufweiche users …`: the users file edited from the command line."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner, Result

from switch.access.passwords import Passwords, token_digest
from switch.access.users import UsersFile
from switch.cli import main as cli

PASSWORD = "a long password\n" * 2


def run(path: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["users", "--users-file", str(path), *args], input=stdin)


def test_add_list_remove(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    result = run(path, "list")
    assert result.output == "no users (the HTTP side is open, on loopback only)\n"
    result = run(
        path, "add", "jan", "--role", "owner", "--tenant", "t1", "--person", "jan", stdin=PASSWORD
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "a long password" not in path.read_text()
    assert Passwords().verify(UsersFile(path).load().users["jan"].password, "a long password")
    result = run(path, "add", "olga", "--role", "ops", "--grant", "recordings", stdin=PASSWORD)
    assert result.exit_code == 0, result.output
    result = run(path, "list")
    assert result.output.splitlines() == [
        "jan  owner  tenants=t1 person=jan  totp pending",
        "olga  ops  tenants=all grants=recordings  totp pending",
    ]
    result = run(path, "add", "jan", "--role", "ops", stdin=PASSWORD)
    assert result.exit_code == 1
    assert "user 'jan' exists already" in result.output
    result = run(path, "remove", "jan")
    assert result.exit_code == 0
    assert list(UsersFile(path).load().users) == ["olga"]


def test_refusals_are_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    result = run(path, "add", "jan", "--role", "owner", stdin="short\nshort\n")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "rufweiche: password is too short: 5 < 10 characters"
    result = run(path, "add", "jan", "--role", "owner", stdin=PASSWORD)
    assert result.output.splitlines()[-1] == (
        "rufweiche: user 'jan': an owner needs at least one --tenant"
    )
    result = run(path, "passwd", "nobody")  # refused before asking for a password
    assert result.exit_code == 1
    assert result.output == "rufweiche: user 'nobody' not found; users: none\n"
    result = run(path, "token", "revoke", "deadbeef")
    assert result.output == (
        "rufweiche: token 'deadbeef' not found (see `rufweiche users token list`)\n"
    )
    path.write_text("users: [\n")
    path.chmod(0o600)
    result = run(path, "list")
    assert result.exit_code == 1
    assert result.output.startswith(f"rufweiche: {path}:2:1: YAML syntax error")


def test_tokens_and_mqtt_files(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    run(path, "add", "jan", "--role", "owner", "--tenant", "t1", "--tenant", "t2", stdin=PASSWORD)
    result = run(path, "token", "create", "jan", "--label", "ha", "--tenant", "t2")
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[-1]
    token_id = result.output.split()[1]
    (line,) = run(path, "token", "list").output.splitlines()
    assert line.startswith(f"{token_id}  jan  tenants=t2  ")
    assert line.endswith("  ha")
    assert token not in path.read_text()
    users = UsersFile(path).load()
    who = users.principal_for_token(token_digest(token))
    assert who is not None
    assert who.tenants == {"t2"}

    result = run(path, "mqtt-device", "t1", "jan")
    assert result.exit_code == 0, result.output
    out = tmp_path / "mq"
    result = run(path, "mqtt-files", "--out", str(out))
    assert result.exit_code == 0, result.output
    for name in ("passwd", "acl", "switch.password"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert [line.split(":")[0] for line in (out / "passwd").read_text().splitlines()] == [
        "rufweiche",
        "t1.jan",
    ]
    # a second run keeps the switch's password (the running switch uses it)
    before = (out / "switch.password").read_text()
    assert run(path, "mqtt-files", "--out", str(out)).exit_code == 0
    assert (out / "switch.password").read_text() == before
