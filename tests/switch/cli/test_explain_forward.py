"""``explain`` shows a call forwarding (issue 18): by ``--forward`` or from the data directory."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from switch import cli

PLAN = """\
tenant: t
name: Tischlerei Test
numbers: ["+49 30 1234560"]
people: {jan: {name: Jan, devices: {desk: "sip:jan@office"}}}
service: {heimbuero: {name: Heimbüro, devices: {anna: "sip:anna@svc"}}}
rules:
  - name: Jan first
    then: [{ring: jan.desk, timeout: 15s}, {ring: heimbuero.anna, timeout: 10s}]
"""


def explain(tmp_path: Path, *extra: str, lang: str = "") -> tuple[int, str]:
    plan = tmp_path / "t.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    args = ["explain", str(plan), "--to", "+49 30 1234560", "--at", "2027-05-25 10:00", *extra]
    result = CliRunner().invoke(cli.main, args, env={"RUFWEICHE_LANG": lang})
    return result.exit_code, result.output


def test_forward_option_in_german_and_english(tmp_path: Path) -> None:
    code, out = explain(tmp_path, "--forward", "jan=0170 1234567")
    assert code == 0, out
    assert "Rufumleitung: jan → +49 170 1234567" in out
    assert " 1. klingelt bei Jan umgeleitet (tel:+491701234567), 15 s lang" in out
    assert "Heimbüro anna (sip:anna@svc), 10 s lang" in out
    code, out = explain(tmp_path, "--forward", "jan=01701234567", lang="en")
    assert "Forwarding: jan → +49 170 1234567" in out
    assert "jan is forwarded to +491701234567" in out


def test_forwarding_read_from_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "forwarding.json").write_text(json.dumps({"t": {"jan": "+4930999999"}}))
    code, out = explain(tmp_path, "--data-dir", str(data))
    assert code == 0, out
    assert "(tel:+4930999999)" in out
    code, out = explain(tmp_path)
    assert "tel:" not in out


def test_a_premium_target_is_refused(tmp_path: Path) -> None:
    code, out = explain(tmp_path, "--forward", "jan=09001234567")
    assert code == 2
    assert "Forwarding to premium numbers not allowed" in out
    code, out = explain(tmp_path, "--forward", "eva=0301234")
    assert code == 2
    assert "not a person" in out
    code, out = explain(tmp_path, "--forward", "jan")
    assert code == 2
