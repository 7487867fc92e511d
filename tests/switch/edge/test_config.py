"""Settings, rendering, secrets, and the rendered configuration checked by Kamailio itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from switch.cli import edge as edge_cli
from switch.edge import (
    Edge,
    EdgeSettings,
    WorkerDestination,
    load_edge_settings,
    render_config,
    render_dispatcher_list,
    settings_for_pool,
    write_files,
)
from switch.edge.config import render
from switch.edge.credentials import add_user, ha1, load_secrets
from switch.edge.database import write_subscriber_table
from switch.errors import CredentialsError, EdgeConfigError
from tests.helpers.edge import edge_settings, needs_kamailio


def full_settings(tmp_path: Path) -> EdgeSettings:
    return edge_settings(
        tmp_path,
        workers=[
            {"uri": "sip:127.0.0.1:35100", "maxload": 2},
            {"uri": "sip:127.0.0.1:35110;transport=tcp", "maxload": 4},
        ],
        trunk_sources=["192.0.2.0/24", "127.0.0.1"],
        public_numbers=["+4930123456", "100"],
        outbound_targets=["+491701234567", "sip:bob@198.51.100.7", "tel:*99#"],
        advertise="203.0.113.5:5060",
    )


def test_ha1_is_md5_of_user_realm_password() -> None:
    # RFC 2617 §3.2.2.2; the value is `printf alice:127.0.0.1:s3cret | md5sum` (coreutils).
    assert ha1("alice", "127.0.0.1", "s3cret") == "124bab93cce48902dd125f7d92013b49"


def test_add_user_writes_ha1_only_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    add_user(path, "alice", "s3cret", realm="office")
    add_user(path, "bob", "pa55")
    loaded = load_secrets(path)
    assert loaded.realm == "office"
    assert loaded.users == {
        "alice": ha1("alice", "office", "s3cret"),
        "bob": ha1("bob", "office", "pa55"),
    }
    assert "s3cret" not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("user", "password", "realm", "message"),
    [
        ("al ice", "x", "office", "not a valid SIP user name"),
        ("alice", "", "office", "empty password"),
        ("alice", "x", None, "needs a realm"),
    ],
)
def test_add_user_rejects(
    tmp_path: Path, user: str, password: str, realm: str | None, message: str
) -> None:
    with pytest.raises(CredentialsError, match=message):
        add_user(tmp_path / "s.yaml", user, password, realm=realm)


def test_add_user_refuses_another_realm(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    add_user(path, "alice", "x", realm="office")
    with pytest.raises(CredentialsError, match="realm 'home' differs"):
        add_user(path, "bob", "y", realm="home")


def test_secrets_file_with_a_password_instead_of_ha1_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("realm: office\nusers:\n  alice: s3cret\n")
    with pytest.raises(CredentialsError, match=r"users\.alice"):
        load_secrets(path)


def test_settings_reject_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not sip:IP:PORT"):
        WorkerDestination(uri="sips:127.0.0.1:5061")
    with pytest.raises(ValidationError, match="host must be an IP"):
        WorkerDestination(uri="sip:worker.example:5060")
    with pytest.raises(ValidationError, match="not an IP address or CIDR"):
        edge_settings(tmp_path, trunk_sources=["trunk.example"])
    with pytest.raises(ValidationError, match="public number"):
        edge_settings(tmp_path, public_numbers=['100"; exit; "'])
    with pytest.raises(ValidationError, match="go together"):
        edge_settings(tmp_path, tls_listen="127.0.0.1:5061")
    with pytest.raises(ValidationError, match="host must be an IP"):
        edge_settings(tmp_path, listen="edge.example:5060")


def test_render_fails_on_an_unknown_placeholder() -> None:
    with pytest.raises(EdgeConfigError, match=r"\{\{nope\}\} has no value"):
        render("a {{nope}} b", {})


def test_rendered_config_names_every_setting(tmp_path: Path) -> None:
    settings = full_settings(tmp_path)
    text = render_config(settings)
    assert "{{" not in text
    assert f"listen=udp:{settings.listen} advertise 203.0.113.5:5060" in text
    assert '"^([+]4930123456|100)$"' in text
    assert '"^([+]491701234567|[*]99[#])$"' in text
    assert '"^(bob@198[.]51[.]100[.]7)$"' in text
    assert "192.0.2.0/24,127.0.0.1" in text
    assert "friendly-scanner|sipvicious" in text
    assert render_dispatcher_list(settings).splitlines()[1:] == [
        "1 sip:127.0.0.1:35100 0 0 duid=w1;maxload=2",
        "1 sip:127.0.0.1:35110;transport=tcp 0 0 duid=w2;maxload=4",
    ]


def test_settings_file_and_external_mode_render_only(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "listen: 127.0.0.1:5070\nworkers:\n  - uri: sip:127.0.0.1:5300\n"
        f"db_path: {tmp_path / 'db' / 'edge.db'}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        edge_cli.main, ["--settings", str(path), "--edge", "external", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "kamailio -DD -E -f" in result.output
    assert (out / "kamailio.cfg").exists()
    assert "maxload=2" in (out / "dispatcher.list").read_text()
    with sqlite3.connect(tmp_path / "db" / "edge.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"subscriber", "location", "presentity", "active_watchers"} <= tables


def test_settings_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("listen: 127.0.0.1:5070\nworker_rate: 0\ntls_lisen: x\n")
    with pytest.raises(EdgeConfigError) as info:
        load_edge_settings(path)
    assert str(info.value).splitlines() == [
        f"{path}:2:1: worker_rate: Input should be greater than or equal to 1",
        f"{path}:3:1: tls_lisen: unknown key, did you mean 'tls_listen'?",
    ]
    assert (info.value.line, info.value.column, info.value.key) == (2, 1, "worker_rate")


def test_subscribers_come_from_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", "s3cret", realm="office")
    paths = write_files(edge_settings(tmp_path, secrets_file=secrets))
    with sqlite3.connect(paths.db) as db:
        rows = db.execute("SELECT username, domain, password, ha1 FROM subscriber").fetchall()
    assert rows == [("alice", "office", "", ha1("alice", "office", "s3cret"))]
    # Rewriting replaces, never duplicates.
    assert write_subscriber_table(paths.db, load_secrets(secrets)) == 1


def test_secrets_realm_must_match_the_domain(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", "s3cret", realm="elsewhere")
    with pytest.raises(EdgeConfigError, match="not the edge domain"):
        write_files(edge_settings(tmp_path, secrets_file=secrets))


@pytest.mark.peer
@needs_kamailio
async def test_rendered_config_passes_kamailio_check(tmp_path: Path) -> None:
    edge = Edge(full_settings(tmp_path))
    edge.write_files()
    await edge.check_config()


@pytest.mark.peer
@needs_kamailio
async def test_kamailio_check_failure_is_reported(tmp_path: Path) -> None:
    edge = Edge(full_settings(tmp_path))
    edge.write_files()
    edge.paths.config.write_text(edge.paths.config.read_text() + "\nroute[BROKEN] { nope( }\n")
    with pytest.raises(EdgeConfigError, match="rejected") as info:
        await edge.check_config()
    assert "BROKEN" in info.value.output or "syntax error" in info.value.output


def test_secrets_cli_asks_for_the_password_and_stores_ha1(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    result = CliRunner().invoke(
        edge_cli.credentials_main, [str(path), "alice", "--realm", "office"], input="pw1\npw1\n"
    )
    assert result.exit_code == 0, result.output
    assert load_secrets(path).users == {"alice": ha1("alice", "office", "pw1")}
    bad = CliRunner().invoke(edge_cli.credentials_main, [str(path), "bo b"], input="x\nx\n")
    assert bad.exit_code == 1
    assert "not a valid SIP user name" in bad.output


def test_settings_for_a_worker_pool(tmp_path: Path) -> None:
    settings = settings_for_pool(
        {"public_numbers": ["+4930123456"], "worker_rate": 8},
        "192.0.2.10:5060",
        ["127.0.0.1:5061", "127.0.0.1:5062"],
        tmp_path,
    )
    assert [w.uri for w in settings.workers] == ["sip:127.0.0.1:5061", "sip:127.0.0.1:5062"]
    assert {w.maxload for w in settings.workers} == {2}
    assert settings.worker_rate == 8
    assert settings.run_dir == tmp_path / "edge"
    with pytest.raises(EdgeConfigError, match="edge settings: worker_rat"):
        settings_for_pool({"worker_rat": 8}, "192.0.2.10:5060", [], tmp_path)
    with pytest.raises(EdgeConfigError, match="give the IP"):
        settings_for_pool({}, "0.0.0.0:5060", [], tmp_path)
