"""Operator files read through switch/configfile.py: every kind names file:line:col and key.

The settings file (YAML and TOML), its ``edge:`` section (validated at load, not when the
edge starts), an ``edge.yaml`` of ``python -m switch.edge`` and the phones' secrets file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rules import DialPlanSet
from switch.cli import main as cli
from switch.edge import load_edge_settings
from switch.edge.credentials import load_secrets
from switch.errors import CredentialsError, EdgeConfigError, SettingsError
from switch.supervisor.settings import Settings, load_settings
from switch.supervisor.topology import edge_settings, worker_specs


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_typo_names_line_column_and_the_key_meant(tmp_path: Path) -> None:
    path = write(tmp_path / "settings.yaml", "workers: 2\nhttp: 127.0.0.1:8080\ngrace_second: 3\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert (
        str(info.value) == f"{path}:3:1: grace_second: unknown key, did you mean 'grace_seconds'?"
    )
    assert (info.value.path, info.value.line, info.value.column) == (str(path), 3, 1)


def test_settings_edge_section_is_checked_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path / "settings.yaml",
        "workers: 2\nedge:\n  domain: office\n  worker_rat: 8\n  shm_mb: 1\n",
    )
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(info.value).splitlines() == [
        f"{path}:5:3: edge.shm_mb: Input should be greater than or equal to 64",
        f"{path}:4:3: edge.worker_rat: unknown key, did you mean 'worker_rate'?",
    ]


def test_settings_edge_keys_given_win_over_derived_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path / "settings.yaml", "workers: 2\nedge:\n  domain: home\n  worker_rate: 7\n"
    )
    settings = load_settings(path, {"data_dir": tmp_path})
    assert settings.edge_overrides() == {"domain": "home", "worker_rate": 7}
    derived = edge_settings(settings, DialPlanSet({}), worker_specs(settings))
    assert (derived.domain, derived.worker_rate, derived.worker_tries) == ("home", 7, 2)
    assert derived.run_dir == tmp_path / "edge"
    assert Settings().edge_overrides() == {}


def test_settings_toml_names_the_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "settings.toml", 'workers = 0\nsip = "127.0.0.1:5060"\n')
    with pytest.raises(SettingsError, match=r"settings\.toml: workers: Input should be greater"):
        load_settings(path)
    broken = write(tmp_path / "broken.toml", "workers = \n")
    with pytest.raises(SettingsError, match=r"broken\.toml: not valid toml"):
        load_settings(broken)


def test_settings_bad_address_is_one_clear_line(tmp_path: Path) -> None:
    path = write(tmp_path / "settings.yaml", "sip: '::1:5060'\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path}:1:1: sip: address '::1:5060': write an IPv6 address in brackets, e.g. [::1]:5060"
    )
    ok = write(tmp_path / "v6.yaml", "sip: '[::1]:5070'\n")
    assert str(load_settings(ok).sip_endpoint()) == "[::1]:5070"


def test_edge_yaml_typo(tmp_path: Path) -> None:
    path = write(tmp_path / "edge.yaml", "listen: 127.0.0.1:5070\nchildern: 4\n")
    with pytest.raises(EdgeConfigError) as info:
        load_edge_settings(path)
    assert str(info.value) == f"{path}:2:1: childern: unknown key, did you mean 'children'?"


def test_credentials_typo(tmp_path: Path) -> None:
    path = write(tmp_path / "secrets.yaml", "realm: office\nuser:\n  alice: x\n")
    with pytest.raises(CredentialsError) as info:
        load_secrets(path)
    assert str(info.value) == f"{path}:2:1: user: unknown key, did you mean 'users'?"


def test_run_reports_a_settings_typo_before_starting(tmp_path: Path) -> None:
    path = write(tmp_path / "settings.yaml", "edge:\n  listn: 127.0.0.1:5060\n")
    result = CliRunner().invoke(cli, ["run", "--settings", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"rufweiche: {path}:2:3: edge.listn: unknown key, did you mean 'listen'?\n"
    )


def test_workers_fit_500_held_calls_but_stay_capped(tmp_path: Path) -> None:
    # Issue 16: 500 held calls at 2 per worker need 250 workers and some to spare.
    assert load_settings(write(tmp_path / "ok.yaml", "workers: 256\n")).workers == 256
    with pytest.raises(SettingsError, match=r"workers: Input should be less than or equal to 256"):
        load_settings(write(tmp_path / "big.yaml", "workers: 257\n"))


def test_the_relays_ports_must_hold_the_workers_calls(tmp_path: Path) -> None:
    # 8 ports a call (RTP + RTCP for each side of two relayed dialogs): 1,000 ports relay 125
    path = write(
        tmp_path / "narrow.yaml",
        "workers: 64\nedge:\n  media_relay:\n    port_min: 30000\n    port_max: 30999\n",
    )
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path}:1:1: edge.media_relay: ports 30000-30999 relay 125 calls at once (8 ports each),"
        " the 64 workers carry 128: raise port_max"
    )
    assert load_settings(write(tmp_path / "fits.yaml", "workers: 62\n" + path.read_text()[11:]))
    # the default range is rtpengine's own: 10,000 ports
    assert Settings(workers=128).edge.media_relay.calls() == 1250
    off = {"media_relay": {"mode": "off", "port_max": 30007}}  # no relay: no ports needed
    assert Settings(workers=128, edge=off).workers == 128
