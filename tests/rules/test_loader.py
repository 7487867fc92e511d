"""Loading files and directories into a DialPlanSet; numbers; the week helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rules import (
    CallInfo,
    DialPlanError,
    DialPlanSet,
    load_dialplans,
    load_plan,
    normalize_number,
    wall_instant,
    week_days,
    week_grid,
    week_slots,
    week_status,
    yamlsource,
)
from rules.numbers import normalize_prefix, routing_number
from tests.rules.helpers import BERLIN, plan, problems

PLAN_A = """\
tenant: a
name: A
numbers: ["+49 2331 987654-0"]
people:
  jan: {devices: {desk: "sip:201@office;transport=tcp", mobile: "tel:+491701234567"}}
  eva: {devices: {desk: "+49 2331 987654-5"}}
extensions:
  "+49 2331 987654-7": jan
rules: [{name: r, then: reject}]
"""
PLAN_B = """\
tenant: b
name: B
numbers: ["+49 89 4567890"]
rules: [{name: r, then: reject}]
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_a_directory_and_single_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PLAN_A)
    write(tmp_path, "b.yml", PLAN_B)
    write(tmp_path, "notes.txt", "not a plan")
    (tmp_path / "sub.yaml").mkdir()  # a directory named like a plan is not a plan
    plans = load_dialplans([tmp_path])
    assert len(plans) == 2
    assert sorted(p.tenant for p in plans) == ["a", "b"]
    assert repr(plans) == "<DialPlanSet ['a', 'b']>"
    assert plans.plans["a"].source == str(tmp_path / "a.yaml")
    assert plans.for_number("+4923319876540") is plans.plans["a"]
    assert plans.for_number("089 4567890") is plans.plans["b"]
    assert plans.for_number("02331 987654-7") is plans.plans["a"]  # an extension
    assert plans.for_number("+49301234567") is None
    assert plans.warnings == ()
    single = load_dialplans([tmp_path / "b.yml"])
    assert list(single.plans) == ["b"]
    with pytest.raises(TypeError):
        plans.plans["c"] = plans.plans["a"]  # type: ignore[index]


def test_device_owner_for_feature_codes(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PLAN_A)
    plans = load_dialplans([tmp_path])
    a = plans.plans["a"]
    assert plans.device_owner("sip:201@OFFICE") == (a, "jan")
    assert plans.device_owner("sip:201@office;transport=udp") == (a, "jan")
    assert plans.device_owner("tel:+491701234567") == (a, "jan")
    assert plans.device_owner("0170 1234567") == (a, "jan")
    assert plans.device_owner("+49 2331 987654-5") == (a, "eva")
    assert plans.device_owner("+4923319876547") == (a, "jan")  # the extension number
    assert plans.device_owner("sip:999@office") is None
    assert plans.device_owner("+49 30 1234567") is None
    assert plans.device_owner("sip:nobody") is None


def test_two_plans_claiming_one_number_name_both_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PLAN_A)
    write(
        tmp_path,
        "c.yaml",
        PLAN_B.replace("tenant: b", "tenant: c").replace(
            '"+49 89 4567890"', '"+49 89 4567890", "02331 9876540"'
        ),
    )
    with pytest.raises(DialPlanError) as info:
        load_dialplans([tmp_path])
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'c.yaml'}:3:29: number +4923319876540 is claimed by tenant 'c' and by "
        f"tenant 'a' in {tmp_path / 'a.yaml'}:3"
    ]


def test_duplicate_tenants_and_problems_of_all_files_together(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", PLAN_A)
    write(tmp_path, "a2.yaml", PLAN_A)
    write(tmp_path, "broken.yaml", "tenant: x\n")
    with pytest.raises(DialPlanError) as info:
        load_dialplans([tmp_path])
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'a2.yaml'}:1:1: tenant 'a' is also in {tmp_path / 'a.yaml'}",
        f"{tmp_path / 'broken.yaml'}:1:1: missing required key 'name'",
    ]


def test_an_empty_set_and_plan_repr() -> None:
    empty = DialPlanSet([])
    assert len(empty) == 0
    assert empty.for_number("+4923319876540") is None
    p = plan("rules: [{name: r, then: reject}]\n")
    assert repr(p) == "<DialPlan 'test' from '<test>'>"
    assert p.person("jan") is p.people["jan"]
    assert p.person("svc") is p.service["svc"]
    assert p.person("nobody") is None
    assert p.spec.tenant == "test"
    assert p.feature_codes["*31"] == "away"
    assert p.region == "DE"


def test_load_plan_from_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", PLAN_A)
    p = load_plan(path)
    assert p.numbers == ("+4923319876540", "+4923319876547")
    assert p.people["eva"].devices["desk"] == "tel:+4923319876545"


def test_feature_codes_and_region_are_configurable() -> None:
    p = plan(
        "region: AT\nfeature_codes: {'*40': available, '#41': dnd}\n",
        head="tenant: t\nname: T\nnumbers: ['01 5123456']\n",
    )
    assert p.numbers == ("+4315123456",)
    assert dict(p.feature_codes) == {"*40": "available", "#41": "dnd"}
    assert plan("feature_codes: {}\n").feature_codes == {}


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+49 2331 987654-0", "DE", "+4923319876540"),
        ("02331 9876540", "DE", "+4923319876540"),
        ("tel:+49-2331-9876540;phone-context=x", "DE", "+4923319876540"),
        ("01 5123456", "AT", "+4315123456"),
        ("12", "DE", None),
        ("hello", "DE", None),
        ("+49 2331", "DE", None),
    ],
)
def test_normalize_number(raw: str, region: str, e164: str | None) -> None:
    assert normalize_number(raw, region) == e164


def test_routing_number_is_cached_and_keeps_unreadable_input() -> None:
    assert routing_number("+4923319876540", "DE") == "+4923319876540"
    assert routing_number("02331 9876540", "DE") == "+4923319876540"
    assert routing_number("not a number", "DE") == "not a number"


def test_routing_number_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import numbers

    monkeypatch.setattr(numbers, "_ROUTING_MAX", 2)
    numbers._ROUTING.clear()
    for i in range(5):
        assert routing_number(f"+4923319876{i:03d}", "DE") == f"+4923319876{i:03d}"
    assert len(numbers._ROUTING) <= 2


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [("+49 171", "+49171"), ("0171", "+49171"), ("0049 (171) 5", "+491715"), ("x", None)],
)
def test_normalize_prefix(raw: str, prefix: str | None) -> None:
    assert normalize_prefix(raw, "DE") == prefix


def test_week_grid_covers_the_week_with_holidays() -> None:
    p = plan(
        "holidays: {country: DE, subdivision: NW}\nschedules: {office: {weekdays: '08:00-17:00'}}\n"
        "rules:\n  - {name: office, when: {schedule: office}, then: [{ring: [jan]}]}\n"
        "  - {name: closed, then: voicemail}\n"
    )
    assert week_days(2027, 21)[0] == dt.date(2027, 5, 24)
    slots = week_slots(p, 2027, 21)
    assert len(slots) == 168
    assert slots[0] == dt.datetime(2027, 5, 24, 0, 0, tzinfo=BERLIN)
    assert len(week_slots(p, 2027, 21, step_minutes=30)) == 336
    grid = week_grid(p, CallInfo("+4923319876540"), {}, 2027, 21)
    office_hours = [slot.strftime("%a %H") for slot, d in grid if d.rule == "office"]
    assert len(office_hours) == 4 * 9  # Thursday 27 May 2027 is Fronleichnam
    assert "Thu 10" not in office_hours
    status = week_status(p, 2027, 21)
    assert [s.holiday for s in status if s.holiday] == ["Fronleichnam"]
    with pytest.raises(ValueError, match="must divide a day"):
        week_slots(p, 2027, 21, step_minutes=7)
    with pytest.raises(ValueError, match="must divide a day"):
        week_slots(p, 2027, 21, step_minutes=0)
    with pytest.raises(ValueError, match="Invalid week"):
        week_days(2027, 60)


def test_week_slots_on_the_dst_days_are_wall_clock_hours() -> None:
    p = plan(
        "schedules: {s: {sun: '03:00-04:00'}}\n"
        "rules:\n  - {name: r, when: {schedule: s}, then: reject}\n"
    )
    spring = week_slots(p, 2027, 12)  # Mon 22 to Sun 28 March 2027
    assert len(spring) == 168
    two_am = spring[-22]  # Sunday 02:00, which does not exist that night
    # it is read as the instant it becomes, 03:00 CEST (01:00 UTC), inside the range
    assert (two_am.hour, two_am.utcoffset()) == (3, dt.timedelta(hours=2))
    assert two_am == dt.datetime(2027, 3, 28, 1, 0, tzinfo=dt.UTC)
    assert week_grid(p, CallInfo("+4923319876540"), {}, 2027, 12)[-22][1].rule == "r"
    autumn = week_slots(p, 2027, 43)  # the week ending Sunday 31 October 2027
    assert autumn[-22].utcoffset() == dt.timedelta(hours=2)  # the first 02:00 (CEST)


def test_a_plan_is_read_only() -> None:
    p = plan("rules: [{name: r, then: reject}]\n")
    with pytest.raises(TypeError):
        p.people["x"] = p.people["jan"]  # type: ignore[index]
    with pytest.raises(TypeError):
        p.extensions["+491"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.tenant = "other"  # type: ignore[misc]


def test_dictation_code_and_length_default_and_are_set_per_plan() -> None:
    default = plan("rules: [{name: r, then: reject}]\n")
    assert default.spec.media.dictation_code == "*50"
    assert default.spec.media.dictation_max == 600.0
    own = plan(
        'media: {dictation_code: "*77", dictation_max: 5m}\nrules: [{name: r, then: reject}]\n'
    )
    assert own.spec.media.dictation_code == "*77"
    assert own.spec.media.dictation_max == 300.0
    assert any("dictation_code" in p for p in problems('media: {dictation_code: "x"}\nrules: []\n'))


def test_a_latin_1_file_names_the_line_and_column_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("tenant: t\nname: Tischlerei Müller\n".encode("latin-1"))
    with pytest.raises(DialPlanError) as info:
        load_plan(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2:19: byte 0xfc ('ü' in Latin-1/Windows-1252) is not UTF-8: save the file as UTF-8"
    ]
    path.write_bytes(b"tenant: t\nname: \xe2\x82\xac \x81\n")  # after a real UTF-8 euro sign
    with pytest.raises(DialPlanError) as info:
        load_plan(path)
    assert str(info.value.problems[0]) == (
        f"{path}:2:9: byte 0x81 is not UTF-8: save the file as UTF-8"
    )


def test_a_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(10 * 1024 * 1024)  # 10 MB of nothing, sparse: nothing is written
    with pytest.raises(DialPlanError) as info:
        load_plan(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:1:1: the file is 10 MB; a dial plan may be at most 2 MB"
    ]


def test_the_municipal_plan_of_the_bench_loads_within_the_limits(tmp_path: Path) -> None:
    from bench.gen_municipality import generate

    path = tmp_path / "gemeinde.yaml"
    path.write_text(generate(), encoding="utf-8")
    assert path.stat().st_size < yamlsource.MAX_BYTES / 4
    municipal = load_plan(path)
    assert len(municipal.extensions) == 1400
    assert municipal.warnings == ()  # no rule of it is reported as never matching


def test_wall_instant_is_the_one_rule_for_skipped_and_repeated_times() -> None:
    skipped, change = wall_instant(dt.date(2027, 3, 28), dt.time(2, 30), BERLIN)
    assert change == "skipped"
    assert (skipped.hour, skipped.minute, skipped.utcoffset()) == (3, 30, dt.timedelta(hours=2))
    repeated, change = wall_instant(dt.date(2027, 10, 31), dt.time(2, 30), BERLIN)
    assert change == "repeated"
    assert (repeated.hour, repeated.utcoffset()) == (2, dt.timedelta(hours=2))  # the first, CEST
    plain, change = wall_instant(dt.date(2027, 5, 27), dt.time(10, 0), BERLIN)
    assert change is None
    assert (plain.hour, plain.utcoffset()) == (10, dt.timedelta(hours=2))
