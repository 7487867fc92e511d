"""The week grid and its two renderings, with a stand-in for the rules (pure code)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rules import CallInfo, load_plan, wall_instant
from switch import weekview
from switch.errors import WeekViewError

BERLIN = ZoneInfo("Europe/Berlin")
SVG = "{http://www.w3.org/2000/svg}"
VARIANT_TEXT = weekview.VARIANT_NOTE_SVG


def office_hours(instant: datetime) -> tuple[str | None, str]:
    """Mon-Fri 08-17 'Office', Saturday mornings 'Saturday', otherwise no rule."""
    local = instant.astimezone(BERLIN)
    if local.weekday() < 5 and 8 <= local.hour < 17:
        return "Office", "home" if local.weekday() == 2 else "desk"
    if local.weekday() == 5 and local.hour < 12:
        return "Saturday", ""
    return None, "reject"


def grid_for(monday: date, slot_minutes: int = 60) -> weekview.WeekGrid:
    return weekview.compute_week(
        monday=monday,
        zone=BERLIN,
        slot_minutes=slot_minutes,
        rule_at=office_hours,
        day_notes=lambda day: ("Testfeiertag",) if day == monday else (),
        rule_names=("Saturday", "Unused", "Office"),
        title="Test — week",
        timezone="Europe/Berlin",
    )


def test_parse_iso_week() -> None:
    assert weekview.parse_iso_week("2027-W21") == date(2027, 5, 24)
    assert weekview.parse_iso_week(" 2027-w01 ") == date(2027, 1, 4)
    assert weekview.iso_week_label(date(2027, 5, 24)) == "2027-W21"


@pytest.mark.parametrize("text", ["2027-21", "2027-W54", "W21", "", "2027-Wxx"])
def test_parse_iso_week_rejects(text: str) -> None:
    with pytest.raises(WeekViewError, match="ISO week"):
        weekview.parse_iso_week(text)


def test_grid_asks_rules_per_slot_and_legend_follows_plan_order() -> None:
    grid = grid_for(date(2027, 5, 24))
    assert [day.date for day in grid.days] == [date(2027, 5, 24 + i) for i in range(7)]
    assert all(len(day.cells) == 24 for day in grid.days)
    monday = grid.days[0]
    assert monday.cells[7].rule is None
    assert monday.cells[8].rule == "Office"
    assert monday.cells[16].rule == "Office"
    assert monday.cells[17].rule is None
    assert monday.notes == ("Testfeiertag",)
    # Plan order, rules that never apply left out, "no rule" last.
    assert grid.legend == (("A", "Saturday"), ("B", "Office"), ("·", weekview.NO_RULE))
    assert grid.letter("Office") == "B"
    assert grid.letter(None) == "·"


def test_half_hour_slots() -> None:
    grid = grid_for(date(2027, 5, 24), slot_minutes=30)
    assert len(grid.days[0].cells) == 48
    assert grid.days[0].cells[17].start == time(8, 30)


def test_bad_slot_size() -> None:
    with pytest.raises(WeekViewError, match="slot of 20"):
        weekview.slot_times(20)


def test_spring_forward_hour_shows_the_hour_it_becomes() -> None:
    # 28 March 2027: Berlin skips 02:00-03:00; the 02:00 slot shows what happens at 03:00 CEST
    # (docs/dialplan.md, "Time zones and daylight saving time").
    seen: list[datetime] = []

    def record(instant: datetime) -> tuple[str | None, str]:
        seen.append(instant)
        return ("night" if instant.hour < 3 else "early"), ""

    grid = weekview.compute_week(
        monday=date(2027, 3, 22),
        zone=BERLIN,
        slot_minutes=60,
        rule_at=record,
        day_notes=lambda day: (),
        rule_names=("night", "early"),
        title="t",
        timezone="Europe/Berlin",
    )
    sunday = grid.days[6]
    assert sunday.date == date(2027, 3, 28)
    assert all(cell.exists for day in grid.days for cell in day.cells)
    assert [cell.skipped for cell in sunday.cells].count(True) == 1
    assert sunday.cells[2].skipped
    assert sunday.cells[2].rule == "early"  # asked at 03:00 CEST, not at 01:00 CET
    assert seen[6 * 24 + 2] == datetime(2027, 3, 28, 3, 0, tzinfo=BERLIN)
    assert seen[6 * 24 + 2].utcoffset() == seen[6 * 24 + 3].utcoffset()
    assert "clocks go forward" in sunday.notes
    assert not any(cell.skipped for day in grid.days[:6] for cell in day.cells)


def test_autumn_hour_taken_once_and_noted() -> None:
    # 31 October 2027: Berlin repeats 02:00-03:00.
    grid = grid_for(date(2027, 10, 25))
    sunday = grid.days[6]
    assert all(cell.exists for cell in sunday.cells)
    assert "clocks go back" in sunday.notes
    instant, change = wall_instant(sunday.date, time(2, 30), BERLIN)
    assert change == "repeated"
    assert instant.utcoffset() == ZoneInfo("Europe/Berlin").utcoffset(datetime(2027, 10, 1))


def test_text_table_has_letters_legend_and_notes() -> None:
    text = weekview.render_text(grid_for(date(2027, 5, 24)))
    lines = text.splitlines()
    assert lines[0] == "Test — week (Europe/Berlin)"
    assert lines[2].split()[:3] == ["00", "01", "02"]
    monday = next(line for line in lines if line.startswith("Mon 24 May"))
    assert "B  B  B" in monday
    assert monday.endswith("Testfeiertag")
    saturday = next(line for line in lines if line.startswith("Sat 29 May"))
    assert "A  A" in saturday
    assert "B" not in saturday[11:]
    assert "  A  Saturday" in lines
    assert "  B  Office" in lines
    assert f"  ·  {weekview.NO_RULE}" in lines
    wednesday = next(line for line in lines if line.startswith("Wed 26 May"))
    assert "b  b  b" in wednesday
    assert "B" not in wednesday[11:]
    assert f"  {weekview.VARIANT_NOTE_TEXT}" in lines


def test_variants_are_marked_only_where_the_detail_differs() -> None:
    grid = grid_for(date(2027, 5, 24))
    flags = {
        (day.date.weekday(), cell.rule, cell.variant) for day in grid.days for cell in day.cells
    }
    assert (2, "Office", True) in flags
    assert (1, "Office", False) in flags
    assert not any(variant for weekday, _, variant in flags if weekday != 2)
    assert grid.has_variants


def test_text_table_style_hook_sees_rules() -> None:
    seen: set[str | None] = set()

    def style(text: str, rule: str | None) -> str:
        seen.add(rule)
        return f"[{text}]"

    text = weekview.render_text(grid_for(date(2027, 5, 24)), style=style)
    assert "[B][B]" not in text  # one letter per hour, each styled on its own
    assert "[B]  [B]" in text
    assert seen == {"Office", "Saturday", None}


def test_svg_is_xml_with_one_block_per_slot() -> None:
    grid = grid_for(date(2027, 3, 22), slot_minutes=30)
    root = ET.fromstring(weekview.render_svg(grid))
    assert root.tag == f"{SVG}svg"
    slots = [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "slot"]
    assert len(slots) == 7 * 48
    rules = [rect.get("data-rule") for rect in slots]
    assert rules.count("Office") == 5 * 18
    assert rules.count("") == 0  # 02:00-03:00 on the spring-forward Sunday shows 03:00 CEST
    titles = [rect.findtext(f"{SVG}title") or "" for rect in slots]
    skipped = [t for t in titles if "does not exist" in t]
    assert len(skipped) == 2
    assert all(t.startswith("Sun 28 Mar") for t in skipped)
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "Testfeiertag" in texts
    assert "Test — week" in texts
    legend = [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "legend"]
    assert len(legend) == len(grid.legend)
    office = next(rect for rect in slots if rect.get("data-rule") == "Office")
    assert office.findtext(f"{SVG}title") == "Mon 22 Mar, 08:00–08:30: Office — desk"
    variants = list(root.iter(f"{SVG}circle"))
    assert len([c for c in variants if c.get("class") == "variant"]) == 18  # Wednesday, home
    assert VARIANT_TEXT in texts
    assert office.get("fill") == weekview.rule_colour(grid, "Office")
    assert office.get("fill") != weekview.rule_colour(grid, "Saturday")


def test_terminal_colour() -> None:
    grid = grid_for(date(2027, 5, 24))
    assert weekview.terminal_colour(grid, None) is None
    assert weekview.terminal_colour(grid, "Saturday") != weekview.terminal_colour(grid, "Office")


def test_letter_of_an_unknown_rule() -> None:
    with pytest.raises(KeyError):
        grid_for(date(2027, 5, 24)).letter("nonesuch")


def test_week_grid_needs_a_monday() -> None:
    plan = load_plan(Path(__file__).resolve().parents[3] / "dialplans" / "tischlerei-mueller.yaml")
    with pytest.raises(WeekViewError, match="'2027-05-25' is not a Monday"):
        weekview.week_grid(plan, date(2027, 5, 25), CallInfo("+4923319876540"), {})


def test_explain_and_week_share_one_dst_rule() -> None:
    """`explain --at` and `week` read a wall-clock time by the same rule
    (rules.wall_instant): the skipped spring hour is read as the hour it becomes, with a note,
    the doubled autumn hour is its first occurrence in both."""
    from switch.cli.plans import parse_local_time

    spring = grid_for(date(2027, 3, 22)).days[6]
    assert spring.cells[2].skipped
    explained_spring, note = parse_local_time("2027-03-28 02:00", BERLIN)
    assert note is not None
    assert "does not exist" in note
    assert explained_spring == datetime(2027, 3, 28, 3, 0, tzinfo=BERLIN)
    seen: list[datetime] = []

    def record(instant: datetime) -> tuple[str | None, str]:
        seen.append(instant)
        return None, ""

    weekview.compute_week(
        monday=date(2027, 10, 25),
        zone=BERLIN,
        slot_minutes=60,
        rule_at=record,
        day_notes=lambda day: (),
        rule_names=(),
        title="t",
        timezone="Europe/Berlin",
    )
    at_two = next(i for i in seen if i.date() == date(2027, 10, 31) and i.hour == 2)
    explained, note = parse_local_time("2027-10-31 02:00", BERLIN)
    assert explained == at_two
    assert explained.utcoffset() == at_two.utcoffset()
    assert note is not None
    assert "happens twice" in note
