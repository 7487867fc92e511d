"""The ``rufweiche`` command line, through click's CliRunner, on the example dial plan."""

from __future__ import annotations

import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from switch import cli

ROOT = Path(__file__).resolve().parents[3]
PLAN = str(ROOT / "dialplans" / "tischlerei-mueller.yaml")
OFFICE = "+49 2331 987654-0"
CUSTOMER = "+49 2331 123456"
VIP = "+49 171 5550100"
SVG = "{http://www.w3.org/2000/svg}"


def invoke(*args: str, lang: str = "en") -> Result:
    """The English expectations below run with ``--lang en`` (German is the default:
    test_i18n.py holds the German ones)."""
    result = CliRunner().invoke(cli.main, ["--lang", lang, *args])
    assert "Traceback" not in result.output
    # Only click's own exit (SystemExit) may leave the command: nothing unexpected.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def explain(*args: str, plan: str = PLAN) -> Result:
    return invoke("explain", plan, "--to", OFFICE, *args)


def changed_plan(tmp_path: Path, old: str, new: str) -> str:
    """A copy of the example plan with ``old`` (which it must hold) replaced by ``new``."""
    text = Path(PLAN).read_text(encoding="utf-8")
    assert old in text
    plan = tmp_path / "changed.yaml"
    plan.write_text(text.replace(old, new), encoding="utf-8")
    return str(plan)


# -- check ---------------------------------------------------------------------------------------


def test_check_example_plan() -> None:
    result = invoke("check", PLAN)
    assert result.exit_code == 0, result.output
    summary = result.stdout.splitlines()[0]
    assert summary.startswith("tischlerei-mueller: Tischlerei Müller, 1 number, 1 person, 5 rules")
    assert "holidays DE-NW" in summary
    assert result.stdout.splitlines()[-1] == "1 dial plan ok"


def test_check_broken_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("tenant: x\nname: X\nrules: [\n  - name: a\n", encoding="utf-8")
    result = invoke("check", str(broken))
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{broken}:")
    line, column = first[len(str(broken)) + 1 :].split(":")[:2]
    assert int(line) >= 1
    assert int(column) >= 1
    assert result.stderr.splitlines()[-1] == "rufweiche: 1 problem found, nothing loaded"
    assert result.stdout == ""


def test_check_typo_suggests_the_key(tmp_path: Path) -> None:
    text = Path(PLAN).read_text(encoding="utf-8").replace("timeout: 15s", "timout: 15s")
    plan = tmp_path / "typo.yaml"
    plan.write_text(text, encoding="utf-8")
    result = invoke("check", str(tmp_path))
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(text.splitlines(), start=1) if "timout" in text)
    problem = next(p for p in result.stderr.splitlines() if "timout" in p)
    assert problem.startswith(f"{plan}:{line}:")
    assert "did you mean 'timeout'?" in problem


def test_check_missing_path_and_empty_directory(tmp_path: Path) -> None:
    result = invoke("check", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert result.stderr == f"rufweiche: {tmp_path / 'nope.yaml'}: no such file or directory\n"
    result = invoke("check", str(tmp_path))
    assert result.exit_code == 1
    assert "no dial plans (*.yaml)" in result.stderr


def test_check_without_paths_uses_dialplans_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("check")
    assert result.exit_code == 1
    assert (
        result.stderr == "rufweiche: no dialplans/ directory here: name the dial plans to check\n"
    )
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "a.yaml").write_bytes(Path(PLAN).read_bytes())
    result = invoke("check")
    assert result.exit_code == 0, result.output
    assert "(dialplans/a.yaml)" in result.stdout


def test_check_prints_warnings(tmp_path: Path) -> None:
    plan = tmp_path / "plain.yaml"
    plan.write_text(
        "tenant: plain\nname: Plain\nnumbers: ['+49 2331 987654-0']\n"
        "people: {a: {devices: {desk: 'sip:1@x'}}}\n"
        "rules:\n  - {name: only at night, when: {schedule: {mon-sun: '20:00-24:00'}}, "
        "then: voicemail}\n",
        encoding="utf-8",
    )
    result = invoke("check", str(plan))
    assert result.exit_code == 0, result.output
    assert "(warning)" in result.stderr
    assert "only at night" in result.stderr
    assert result.stdout.splitlines()[0].endswith(f", 1 warning ({plan})")


# -- explain -------------------------------------------------------------------------------------


def test_explain_weekday_office_hours() -> None:
    result = explain("--from", CUSTOMER, "--at", "2027-05-25 10:00")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Tischlerei Müller — Tuesday 25 May 2027, 10:00 (Europe/Berlin), "
        "caller +49 2331 123456, called +49 2331 9876540"
    )
    assert lines[1] == "Rule: Jan in the workshop"
    assert lines[2] == " 1. ring Jan Müller desk (sip:201@office) for 15 s"
    assert lines[3] == " 2. ring Jan Müller mobile (tel:+491701234567) for 20 s"
    assert lines[4] == " 3. ring Heimbüro Sekretariat assistant (sip:assistant1@heimbuero) for 60 s"
    assert lines[5] == " then: voicemail"
    assert lines[6] == "Why:"
    assert "rule 'Jan in the workshop'" in lines[-1]
    assert "→ match" in lines[-1]


def test_explain_night_and_anonymous() -> None:
    result = explain("--from", "anonymous", "--at", "2027-05-25 22:00")
    assert result.exit_code == 0, result.output
    assert "caller anonymous" in result.stdout.splitlines()[0]
    assert "Rule: otherwise the service" in result.stdout
    assert "outside schedule 'office_hours'" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("--from", CUSTOMER, "--at", "2027-05-27 10:00"),
            [
                "This day is a public holiday (Fronleichnam).",
                "Rule: otherwise the service",
                " 1. ring at the same time Heimbüro Sekretariat assistant",
                "and Jan Müller mobile (tel:+491701234567) for 45 s",
            ],
            id="holiday",  # Fronleichnam is a public holiday in Nordrhein-Westfalen
        ),
        pytest.param(
            ("--at", "2027-08-10 10:00"),
            [
                "This day is in the vacation 'Betriebsferien'.",
                "Rule: company vacation",
                " at once: announcement 'Wir sind bis zum 20. August",
            ],
            id="vacation-announcement",
        ),
        pytest.param(
            ("--from", "+49 151 12345678", "--at", "2027-05-25 10:00"),
            ["Rule: blocked callers", " at once: reject with 603"],
            id="blocked-caller-rejected",
        ),
    ],
)
def test_explain_says(args: tuple[str, ...], expected: list[str]) -> None:
    result = explain(*args)
    assert result.exit_code == 0, result.output
    for line in expected:
        assert line in result.stdout


def test_presence_of_a_service_and_until_change_the_decision() -> None:
    """Issue 14 item 13: a service's presence and an until-time reach explain."""
    base = ("--from", CUSTOMER, "--at", "2027-05-25 10:00")
    normal = explain(*base)
    assert normal.exit_code == 0, normal.stderr
    service_away = explain(*base, "--presence", "heimbuero=away")
    assert service_away.exit_code == 0, service_away.stderr
    assert "heimbuero away" in service_away.stdout
    until_past = explain(*base, "--presence", "jan=away until 09:00")
    until_future = explain(*base, "--presence", "jan=away until 11:00")
    away = explain(*base, "--presence", "jan=away")
    assert until_past.exit_code == until_future.exit_code == 0
    assert until_past.stdout == normal.stdout  # the state ended before the call
    assert until_future.stdout == away.stdout  # still away at 10:00


def test_presence_changes_the_decision() -> None:
    available = explain("--from", CUSTOMER, "--at", "2027-05-25 10:00")
    away = explain("--from", CUSTOMER, "--at", "2027-05-25 10:00", "--presence", "jan=away")
    assert "Rule: Jan in the workshop" in available.stdout
    assert away.exit_code == 0, away.output
    assert "Presence: jan away (everyone else available)" in away.stdout
    assert "Rule: otherwise the service" in away.stdout
    assert "jan is away (wanted available)" in away.stdout


def test_explain_vip_rings_in_parallel() -> None:
    result = explain("--from", VIP, "--at", "2027-05-25 10:00")
    assert (
        " 1. ring at the same time Jan Müller desk (sip:201@office) and mobile "
        "(tel:+491701234567) for 25 s\n"
    ) in result.stdout


def test_explain_on_busy_final_is_spelled_out(tmp_path: Path) -> None:
    plan = changed_plan(tmp_path, "on_busy: next", "on_busy: final")
    result = explain("--from", CUSTOMER, "--at", "2027-05-25 10:00", plan=plan)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    index = lines.index(" 2. ring Jan Müller mobile (tel:+491701234567) for 20 s")
    assert lines[index + 1] == "    if busy: stop ringing, go to the final action"


def test_explain_unknown_number() -> None:
    result = invoke("explain", PLAN, "--to", "+49 30 1234567")
    assert result.exit_code == 1
    assert result.stderr == (
        "rufweiche: number '+49 30 1234567' belongs to no dial plan; numbers: +4923319876540\n"
    )
    near = invoke("explain", PLAN, "--to", "+49 2331 987655-0")
    assert "(did you mean '+4923319876540'?)" in near.stderr


def test_long_lists_in_errors_are_cut() -> None:
    assert cli.plans.listing(["b", "a"]) == "a, b"
    names = [f"p{i}" for i in range(1000, 1400)]
    assert cli.plans.listing(names, limit=3) == "p1000, p1001, p1002, … (400 in all)"
    tenants = ["tischlerei-mueller", "dachdeckerei-richter"]
    assert (
        cli.plans.did_you_mean("tischlerei-muller", tenants)
        == " (did you mean 'tischlerei-mueller'?)"
    )
    assert (
        cli.plans.did_you_mean("+49 2331 207-100", ["+492331207100"])
        == " (did you mean '+492331207100'?)"
    )
    assert cli.plans.did_you_mean("zzz", names) == ""


@pytest.mark.parametrize(
    ("presence", "message"),
    [
        (
            "jann=away",
            "no person or service 'jann', did you mean 'jan'? (people: jan; services: heimbuero)",
        ),
        ("jan=gone", "unknown state 'gone' (states: available, away, busy, dnd, offline)"),
        ("jan", "expected ID=STATE or ID=STATE until HH:MM"),
    ],
)
def test_explain_bad_presence(presence: str, message: str) -> None:
    result = explain("--presence", presence)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("at", ["tomorrow", "2027-13-01 10:00", "27.05.2027"])
def test_explain_bad_time(at: str) -> None:
    result = explain("--at", at)
    assert result.exit_code == 1
    assert (
        result.stderr == f"rufweiche: --at {at!r}: expected a local time like '2027-05-27 10:00'\n"
    )


def test_explain_clock_change_notes() -> None:
    skipped = explain("--at", "2027-03-28 02:30")
    assert skipped.exit_code == 0, skipped.output
    assert "Sunday 28 March 2027, 03:30" in skipped.stdout.splitlines()[0]
    assert "02:30 does not exist that day (clocks go forward)" in skipped.stdout
    twice = explain("--at", "2027-10-31 02:30")
    assert "02:30 happens twice that day (clocks go back)" in twice.stdout


def test_explain_default_now_works() -> None:
    result = explain()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Tischlerei Müller — ")


def test_usage_error_is_not_a_traceback() -> None:
    result = invoke("explain", PLAN)
    assert result.exit_code == 2
    assert "Missing option '--to'" in result.stderr


# -- week ----------------------------------------------------------------------------------------


def test_week_table_marks_holiday_and_uses_letters(tmp_path: Path) -> None:
    svg = tmp_path / "week.svg"
    result = invoke("week", PLAN, "--week", "2027-W21", "--from", CUSTOMER, "--svg", str(svg))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Tischlerei Müller — week 2027-W21, 24 May – 30 May 2027 (Europe/Berlin)"
    assert "  A  Jan in the workshop" in lines
    assert "  B  otherwise the service" in lines
    rows = {line[:10]: line[11:] for line in lines if line[:3] in ("Mon", "Thu", "Sat")}
    tuesday_letters = rows["Mon 24 May"].split()
    assert tuesday_letters[7:12] == ["A"] * 5  # 07:00-12:00
    assert tuesday_letters[12] == "B"  # lunch
    assert rows["Thu 27 May"].endswith("holiday: Fronleichnam")
    assert "A" not in rows["Thu 27 May"].split("holiday")[0]
    assert set(rows["Sat 29 May"].split()) == {"B"}
    assert lines[-1] == f"wrote {svg}"

    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    slots = [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "slot"]
    assert len(slots) == 7 * 24
    workshop = [s for s in slots if s.get("data-rule") == "Jan in the workshop"]
    assert len(workshop) == 3 * 9 + 6  # Mon-Wed 07-12 + 13-17, Friday 07-13; Thursday holiday
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "holiday: Fronleichnam" in texts
    assert workshop[0].findtext(f"{SVG}title") == (
        "Mon 24 May, 07:00–08:00: Jan in the workshop — Jan Müller desk 15 s, "
        "then Jan Müller mobile 20 s, then Heimbüro Sekretariat assistant 60 s; voicemail"
    )


def test_week_presence_and_half_hours() -> None:
    result = invoke("week", PLAN, "--week", "2027-W22", "--presence", "jan=dnd", "--slot", "30")
    assert result.exit_code == 0, result.output
    assert "Jan in the workshop" not in result.stdout
    monday = next(line for line in result.stdout.splitlines() if line.startswith("Mon 31 May"))
    assert monday[11:].split()[0] == "AA"  # two half hours per column


def test_week_default_is_this_week() -> None:
    result = invoke("week", PLAN)
    assert result.exit_code == 0, result.output
    assert sum(line[:3] in ("Mon", "Tue", "Sun") for line in result.stdout.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--week", "2027-21"), "--week: week '2027-21' is not an ISO week like '2027-W21'"),
        (("--tenant", "nobody"), "tenant 'nobody' not found; tenants: tischlerei-mueller"),
        (("--presence", "petra=away"), "no person or service 'petra'"),
    ],
)
def test_week_bad_input(args: tuple[str, ...], message: str) -> None:
    result = invoke("week", PLAN, *args)
    assert result.exit_code == 1
    assert message in result.stderr


def test_week_svg_unwritable(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "week.svg"
    result = invoke("week", PLAN, "--week", "2027-W21", "--svg", str(target))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"rufweiche: {target}: cannot write:")


def test_week_needs_a_choice_among_several_plans(tmp_path: Path) -> None:
    text = Path(PLAN).read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
    other = text.replace("tenant: tischlerei-mueller", "tenant: other").replace(
        "+49 2331 987654-0", "+49 2331 987655-0"
    )
    (tmp_path / "b.yaml").write_text(other, encoding="utf-8")
    result = invoke("week", str(tmp_path), "--week", "2027-W21")
    assert result.exit_code == 1
    assert "2 dial plans loaded: choose one with --tenant (other, tischlerei-mueller)" in (
        result.stderr
    )
    chosen = invoke("week", str(tmp_path), "--week", "2027-W21", "--to", "+49 2331 987655-0")
    assert chosen.exit_code == 0, chosen.output
    by_tenant = invoke("week", str(tmp_path), "--week", "2027-W21", "--tenant", "other")
    assert by_tenant.stdout == chosen.stdout


# -- errors and run ------------------------------------------------------------------------------


def test_internal_error_is_one_line_and_exit_70(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("kaputt")

    monkeypatch.setattr(cli.plans, "decide", broken)
    result = explain("--at", "2027-05-25 10:00")
    assert result.exit_code == cli.EX_SOFTWARE
    assert result.stderr == (
        "rufweiche: internal error: RuntimeError: kaputt, please report "
        "(run with --debug to see where)\n"
    )
    debug = CliRunner().invoke(
        cli.main, ["--debug", "explain", PLAN, "--to", OFFICE, "--at", "2027-05-25 10:00"]
    )
    assert isinstance(debug.exception, RuntimeError)


def test_run_hands_options_to_the_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_main(**options: Any) -> int:
        seen.update(options)
        return 0

    fake = types.ModuleType("switch.supervisor.app")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "switch.supervisor.app", fake)
    result = invoke("run", "--workers", "3", "--no-mqtt", "--dialplans", PLAN, "--sip", ":5070")
    assert result.exit_code == 0, result.output
    assert seen == {
        "dialplans": (Path(PLAN),),
        "sip": ":5070",
        "http": None,  # not given: the settings file or its default decides
        "settings": None,
        "workers": 3,
        "data_dir": None,
        "mqtt": None,
        "no_mqtt": True,
        "log_level": None,
        "edge_mode": None,
    }


def test_run_passes_the_supervisor_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("switch.supervisor.app")
    fake.main = lambda **_: 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "switch.supervisor.app", fake)
    assert invoke("run").exit_code == 3


def test_run_without_supervisor_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "switch.supervisor.app", None)  # import raises ImportError
    result = invoke("run")
    assert result.exit_code == 1
    assert result.stderr.startswith("rufweiche: the switch cannot start: switch.supervisor.app")


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("check", "explain", "week", "run"):
        assert command in result.stdout
    assert isinstance(cli.main, click.Group)


NASTY = {
    "empty": b"",
    "list": b"[]\n",
    "binary": b"\xff\xfe\x00bin",
    "tab": b"tenant: x\n\tname: y\n",
    "deep": b"[" * 2000 + b"]" * 2000,
    "types": b"tenant: x\nname: X\nnumbers: 12345678901234567890\nrules: {}\npeople: []\n",
    "duplicate": b"tenant: x\nname: X\ntenant: y\n",
    "two documents": b"---\na: 1\n---\nb: 2\n",
    "alias loop": b"tenant: &a [*a]\n",
}


@pytest.mark.parametrize("name", list(NASTY))
def test_check_nasty_files_give_problems_not_crashes(tmp_path: Path, name: str) -> None:
    path = tmp_path / "nasty.yaml"
    path.write_bytes(NASTY[name])
    result = invoke("check", str(path))
    assert "internal error" not in result.stderr
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:")


def test_explain_time_with_offset_and_confirm(tmp_path: Path) -> None:
    desk = "{ring: [jan.desk], timeout: 15s"
    plan = changed_plan(tmp_path, desk + "}", desk + ", confirm: true}")
    result = explain("--from", CUSTOMER, "--at", "2027-05-25T08:00+00:00", plan=plan)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Tuesday 25 May 2027, 10:00 (Europe/Berlin)" in lines[0]  # 08:00 UTC is 10:00 CEST
    assert lines[3] == "    the one who answers presses 1 to take the call"


def test_week_marks_closed_days_and_vacations() -> None:
    christmas = invoke("week", PLAN, "--week", "2026-W52")
    row = next(line for line in christmas.stdout.splitlines() if line.startswith("Thu 24 Dec"))
    assert row.endswith("closed")
    boxing = next(line for line in christmas.stdout.splitlines() if line.startswith("Fri 25 Dec"))
    assert boxing.endswith("holiday: Erster Weihnachtstag")
    summer = invoke("week", PLAN, "--week", "2027-W32")
    rows = [line for line in summer.stdout.splitlines() if line[:3] in ("Mon", "Sun")]
    assert all(line.endswith("vacation: Betriebsferien") for line in rows)
    assert "  A  company vacation" in summer.stdout.splitlines()


def test_numbers_that_phonenumbers_cannot_read_are_shown_as_given() -> None:
    assert cli.plans.format_number("abc") == "abc"
    assert cli.plans.format_number(None) == "anonymous"
    assert cli.plans.format_number("+4923319876540") == "+49 2331 9876540"
