"""The trunks: settings, profiles, uacreg rows and the rendered Kamailio config."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from switch.edge import EdgeSettings, write_files
from switch.edge.trunks import Trunk, TrunksSettings, uacreg_rows
from switch.errors import EdgeConfigError


def sipgate(**kw: object) -> dict[str, object]:
    return {"name": "sg", "profile": "sipgate", "registrar": "100.64.0.1",
            "username": "1234567t0",
            "numbers": [{"prefix": "+4923319876540", "tenant": "m"}], **kw}  # fmt: skip


def test_profile_fills_in_and_the_operator_wins() -> None:
    trunk = Trunk.model_validate(sipgate())
    assert (trunk.identity_header, trunk.number_format, trunk.forwarding) == (
        "ppi",
        "cc",
        "diversion",
    )
    assert trunk.presented_from_user == "1234567t0"
    assert Trunk.model_validate(sipgate(number_format="+cc")).number_format == "+cc"
    flex = Trunk.model_validate({"name": "t", "profile": "telekom_companyflex",
        "username": "+4930111", "auth_user": "+4930111@tel.t-online.de",
        "outbound_proxy": "123456789012.primary.companyflex.de"})  # fmt: skip
    assert flex.registrar == "tel.t-online.de"
    assert flex.mediasec
    assert flex.transport == "tls"
    assert flex.proxy_uri() == "sip:123456789012.primary.companyflex.de;transport=tls"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        Trunk.model_validate(sipgate(retry_interval=0))  # uac would give up for good
    with pytest.raises(ValidationError):
        Trunk.model_validate(sipgate(numbers=[{"prefix": "4923", "tenant": "m"}]))
    with pytest.raises(ValidationError):
        TrunksSettings.model_validate({"accounts": [sipgate(), sipgate()]})


def test_uacreg_rows_and_sources() -> None:
    trunks = TrunksSettings.model_validate({"accounts": [sipgate(auth_user="auth1")]})
    (row,) = uacreg_rows(trunks, {"sg": "pw"})
    assert row["l_uuid"] == "sg"
    assert row["auth_username"] == "auth1"
    assert row["auth_proxy"] == "sip:100.64.0.1;transport=udp"
    assert trunks.accounts[0].source_networks() == ("100.64.0.1/32",)
    with pytest.raises(KeyError):
        uacreg_rows(trunks, {})


def settings(tmp_path: Path, secrets: str) -> EdgeSettings:
    (tmp_path / "s.yaml").write_text(secrets)
    return EdgeSettings(listen="127.0.0.1:5999", run_dir=tmp_path / "run",
        db_path=tmp_path / "run" / "edge.db", secrets_file=tmp_path / "s.yaml",
        public_numbers=["+4923319876540"],
        trunks={"accounts": [sipgate(mediasec=True)]})  # fmt: skip


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="needs kamailio")
def test_rendered_config_is_accepted_and_uacreg_written(tmp_path: Path) -> None:
    paths = write_files(settings(tmp_path, "realm: office\nusers: {}\ntrunks: {sg: geheim}\n"))
    text = paths.config.read_text()
    assert 'is_in_subnet("$si", "100.64.0.1/32")' in text
    assert '$var(blocks) = "^([+]4923319876540)$";' in text
    assert "geheim" not in text  # the password only in the database
    check = subprocess.run(["kamailio", "-c", "-f", str(paths.config)],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert check.returncode == 0, check.stderr[-2000:]
    with sqlite3.connect(paths.db) as db:
        assert db.execute("SELECT l_uuid, auth_password FROM uacreg").fetchall() == [
            ("sg", "geheim")
        ]
    assert paths.db.stat().st_mode & 0o077 == 0


def test_missing_password_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(EdgeConfigError, match="no password for trunk"):
        write_files(settings(tmp_path, "realm: office\nusers: {}\n"))
