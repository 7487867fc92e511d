"""German first (issue 18): explain/check speak German by default, English on request
(``--lang en``, ``RUFWEICHE_LANG``, the plan's ``language:``); dates in German format,
holiday names as the ``holidays`` package gives them in German."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from switch import cli, i18n
from switch.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]
PLAN = ROOT / "dialplans" / "tischlerei-mueller.yaml"
OFFICE = "+49 2331 987654-0"
CUSTOMER = "+49 2331 123456"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli.main, list(args), env=env or {"RUFWEICHE_LANG": ""})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_explain_is_german_by_default() -> None:
    result = run(
        "explain", str(PLAN), "--to", OFFICE, "--from", CUSTOMER, "--at", "2027-05-25 10:00"
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Tischlerei Müller — Dienstag, 25. Mai 2027, 10:00 (Europe/Berlin), "
        "Anrufer +49 2331 123456, gewählt +49 2331 9876540"
    )
    assert lines[1] == "Regel: Jan in the workshop"
    assert lines[2] == " 1. klingelt bei Jan Müller desk (sip:201@office), 15 s lang"
    assert lines[5] == " danach: Anrufbeantworter"
    assert lines[6] == "Warum:"


def test_holiday_name_in_german_and_presence() -> None:
    result = run(
        "explain", str(PLAN), "--to", OFFICE, "--at", "2027-05-27 10:00",
        "--presence", "jan=away",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Donnerstag, 27. Mai 2027, 10:00" in result.stdout
    assert "Anrufer anonym" in result.stdout
    assert "Dieser Tag ist ein gesetzlicher Feiertag (Fronleichnam)." in result.stdout
    assert "Anwesenheit: jan abwesend (alle anderen erreichbar)" in result.stdout
    assert " 1. klingelt gleichzeitig bei Heimbüro Sekretariat assistant" in result.stdout


def test_english_on_request_by_option_and_environment() -> None:
    by_option = run(
        "--lang", "en", "explain", str(PLAN), "--to", OFFICE, "--at", "2027-05-25 10:00"
    )
    by_env = run(
        "explain", str(PLAN), "--to", OFFICE, "--at", "2027-05-25 10:00",
        env={"RUFWEICHE_LANG": "en_GB.UTF-8"},
    )  # fmt: skip
    assert by_option.exit_code == by_env.exit_code == 0
    assert by_option.stdout == by_env.stdout
    assert "Tuesday 25 May 2027, 10:00" in by_option.stdout
    assert "Rule: Jan in the workshop" in by_option.stdout


def test_the_plans_language_key(tmp_path: Path) -> None:
    english = tmp_path / "plan.yaml"
    english.write_text(PLAN.read_text(encoding="utf-8") + "\nlanguage: en\n", encoding="utf-8")
    result = run("explain", str(english), "--to", OFFICE, "--at", "2027-05-25 10:00")
    assert result.exit_code == 0, result.output
    assert "Rule: Jan in the workshop" in result.stdout
    # --lang still wins over the plan
    german = run(
        "--lang", "de", "explain", str(english), "--to", OFFICE, "--at", "2027-05-25 10:00"
    )
    assert "Regel: Jan in the workshop" in german.stdout


def test_check_in_german_and_english() -> None:
    german = run("check", str(PLAN))
    english = run("--lang", "en", "check", str(PLAN))
    assert german.exit_code == english.exit_code == 0
    assert german.stdout.endswith("1 Wählplan in Ordnung\n")
    assert ", 1 Rufnummer, 1 Person, 5 Regeln, Feiertage DE-NW," in german.stdout
    assert "Feiertage DE-NW" in german.stdout
    assert english.stdout.endswith("1 dial plan ok\n")


def test_unknown_language_is_refused() -> None:
    result = run("--lang", "fr", "check", str(PLAN))
    assert result.exit_code == 2
    with pytest.raises(UsageError, match="'fr'"):
        i18n.language("fr")


def test_catalogue_and_formats() -> None:
    table = i18n.catalogue("de")
    assert table["Why:"] == "Warum:"
    assert i18n.catalogue("en") == {}
    moment = dt.datetime(2027, 3, 1, 9, 5)
    with i18n.using("de"):
        assert i18n.format_datetime(moment) == "01.03.2027, 09:05"
        assert i18n._("voicemail") == "Anrufbeantworter"
    with i18n.using("en"):
        assert i18n._("voicemail") == "voicemail"
        assert i18n.format_datetime(moment) == "1 Mar 2027, 09:05"
    assert i18n.choose(None, "en") == "en" or i18n.requested() is not None
