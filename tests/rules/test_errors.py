"""Broken dial plans: every problem is reported as path:line:col with a helpful message."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import DialPlanError, Problem, load_plan, load_plan_text
from rules.errors import RulesError
from tests.rules.helpers import head_without, plan, problems


def test_problem_renders_like_a_compiler() -> None:
    assert str(Problem("a.yaml", 3, 7, "boom")) == "a.yaml:3:7: boom"


def test_dial_plan_error_sorts_dedupes_and_names_the_first_problem() -> None:
    first = Problem("a.yaml", 2, 1, "x")
    error = DialPlanError([Problem("b.yaml", 1, 1, "y"), first, first])
    assert error.problems == (first, Problem("b.yaml", 1, 1, "y"))
    assert (error.source, error.line) == ("a.yaml", 2)
    assert str(error) == "a.yaml:2:1: x\nb.yaml:1:1: y"
    assert isinstance(error, RulesError)
    empty = DialPlanError([])
    assert (empty.source, empty.line) == ("", 0)


def test_typo_in_a_step_key_suggests_the_nearest_key_with_position() -> None:
    found = problems(
        """\
        rules:
          - name: r
            then:
              - {ring: [jan.desk], timout: 15s}
        """
    )
    assert found == [
        "<test>:12:28: rules[0].then[0].timout: unknown key 'timout', did you mean 'timeout'?"
    ]


def test_typo_in_a_top_level_key_and_a_missing_key() -> None:
    text = "tenant: t\nrulez: []\n"
    with pytest.raises(DialPlanError) as info:
        load_plan_text(text, "x.yaml")
    assert [str(p) for p in info.value.problems] == [
        "x.yaml:1:1: missing required key 'name'",
        "x.yaml:2:1: rulez: unknown key 'rulez', did you mean 'rules'?",
    ]


def test_unknown_key_without_any_close_match_has_no_suggestion() -> None:
    found = problems("rules:\n  - {name: r, then: reject, zzzzzz: 1}\n")
    assert found == ["<test>:10:29: rules[0].zzzzzz: unknown key 'zzzzzz'"]


def test_unknown_key_next_to_another_error_in_the_same_mapping() -> None:
    found = problems("rules:\n  - {name: r, then: [{ring: [jan], timeout: -3, timout: 1}]}\n")
    assert any("did you mean 'timeout'" in p for p in found)
    assert any("timeout: Input should be greater than 0" in p for p in found)


def test_wrong_type_names_the_key_and_position() -> None:
    found = problems("rules:\n  - name: r\n    then: [{ring: [jan], confirm: maybe}]\n")
    assert found == [
        "<test>:11:26: rules[0].then[0].confirm: Input should be a valid boolean, unable to"
        " interpret input"
    ]


def test_every_problem_of_a_file_is_reported() -> None:
    text = """\
tenant: t
name: T
timezone: Europe/Berln
holidays: {country: DE, subdivision: XY}
numbers: ["+49 2331 987654-0", "12"]
people:
  jan: {devices: {desk: "sip:201@office"}}
schedules:
  office: {mon-fri: "08:00-12:00, 11:00-13:00", sat: "10:00-10:00", tues: "09:00-10:00"}
caller_lists: {vip: ["+49 171 5550100"]}
rules:
  - name: a
    when: {schedule: ofice, presence: {jna: available}, caller: vipp}
    then: [{ring: [jan.dsk]}, {ring: [bob]}]
  - name: b
    then: [voicemail, {ring: [jan]}]
"""
    with pytest.raises(DialPlanError) as info:
        load_plan_text(text, "p.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.yaml:3:1: timezone: unknown time zone 'Europe/Berln', did you mean 'Europe/Berlin'?",
        "p.yaml:4:25: holidays.subdivision: unknown subdivision 'XY' of DE (known: BB, BE, BW,"
        " BY, HB, HE, HH, MV, NI, NW, RP, SH, SL, SN, ST, TH, Augsburg)",
        "p.yaml:5:32: numbers[1]: '12' is not a valid phone number (region DE)",
        "p.yaml:9:12: schedules.office.mon-fri: ranges Mon 08:00-12:00 and Mon 11:00-13:00 overlap",
        "p.yaml:9:49: schedules.office.sat: range '10:00-10:00' is empty",
        "p.yaml:9:69: schedules.office.tues: unknown day 'tues', did you mean 'tue'?",
        "p.yaml:13:12: rules[0].when.schedule: unknown schedule 'ofice', did you mean 'office'?",
        "p.yaml:13:40: rules[0].when.presence.jna: unknown person 'jna', did you mean 'jan'?",
        "p.yaml:13:57: rules[0].when.caller: unknown caller list 'vipp', did you mean 'vip'?",
        "p.yaml:14:20: rules[0].then[0].ring[0]: 'jan.dsk': unknown device 'dsk', did you mean"
        " 'desk'?",
        "p.yaml:14:39: rules[0].then[1].ring[0]: unknown person 'bob'",
        "p.yaml:16:23: rules[1].then[1]: nothing can follow a final action (reject, voicemail,"
        " announcement)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenant: [unclosed\n", "<s>:2:1: YAML syntax error"),
        ("a: 1\n b: 2\n", "<s>:2:3: YAML syntax error: mapping values are not allowed"),
        ("", "<s>:1:1: the dial plan is empty"),
        ("- a\n- b\n", "<s>:1:1: a dial plan is a mapping of keys"),
        ("tenant: t\ntenant: u\nname: T\n", "<s>:2:1: duplicate key 'tenant' (first at line 1)"),
        ("? [a, b]\n: 1\n", "<s>:1:3: a key must be a plain word or number"),
        ("tenant: !!python/name:os.system x\n", "<s>:1:9: YAML: could not determine"),
        ("tenant: t\nname: T\nclosed_days: [2026-02-30]\n", "<s>:3:15: closed_days[0]: Input"),
        ("tenant: \x07\n", "<s>:1:1: YAML syntax error"),
    ],
)
def test_yaml_level_problems(text: str, expected: str) -> None:
    with pytest.raises(DialPlanError) as info:
        load_plan_text(text, "<s>")
    assert str(info.value.problems[0]).startswith(expected), str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("timezone: Mars/Olympus\n", "unknown time zone 'Mars/Olympus'"),
        ("timezone: Europe/Berlin/\n", "unknown time zone 'Europe/Berlin/'"),
        ("holidays: {country: XX}\n", "holidays.country: no public holidays known for 'XX'"),
        ("region: de\n", "region: String should match pattern"),
        (
            'numbers: ["+49 2331 987654-0", "02331 9876540"]\n',
            "numbers[1]: number '02331 9876540' is listed",
        ),
        (
            "vacations: [{from: 2027-08-20, to: 2027-08-02}]\n",
            "vacation ends (2027-08-02) before it starts (2027-08-20)",
        ),
        ("caller_lists: {anonymous: []}\n", "'anonymous' is reserved for withheld numbers"),
        ('caller_lists: {x: ["12"]}\n', "caller_lists.x[0]: '12' is not a valid phone number"),
        ('caller_lists: {x: ["abc*"]}\n', "'abc' is not a number prefix like '+49 171'"),
        ('feature_codes: {"*3x": available}\n', "String should match pattern"),
        ("feature_codes: {'*30': sleepy}\n", "Input should be 'available', 'away'"),
        ("schedules: {s: {mon: '7:00-25:00'}}\n", "time '25:00' does not exist"),
        ("schedules: {s: {mon: '07:00-24:30'}}\n", "time '24:30' does not exist"),
        ("schedules: {s: {mon: '24:00-05:00'}}\n", "time '24:00' does not exist"),
        ("schedules: {s: {mon: '07:60-08:00'}}\n", "time '07:60' does not exist"),
        ("schedules: {s: {mon: '7-8'}}\n", "time '7' is not HH:MM"),
        ("schedules: {s: {mon: 'all day'}}\n", "range 'all day' is not HH:MM-HH:MM"),
        ("schedules: {s: {mon-tue: '08:00-09:00', tue: '08:30-10:00'}}\n", "overlap"),
        ("schedules: {s: {sun: '22:00-06:00', mon: '05:00-07:00'}}\n", "overlap"),
        ("schedules: {s: {'mon,mon': '08:00-09:00'}}\n", "day 'mon,mon' names a day twice"),
        ("schedules: {s: {on_closed_day: '08:00-09:00'}}\n", "did you mean 'on_closed_days'"),
        ("schedules: {s: {mon-xyz: '08:00-09:00'}}\n", "unknown day 'xyz'"),
        ("schedules: {s: {mon: 5}}\n", "schedules.s.mon: Input should be a valid string"),
        ("schedules: {s: [mon]}\n", "schedules.s: Input should be a mapping of days to times"),
        ("people: {callee: {devices: {d: 'sip:x@y'}}}\n", "'callee' is reserved"),
        ("people: {x: {devices: {current: 'sip:x@y'}}}\n", "'current' is reserved"),
        ("people: {x: {devices: {d: 'mailto:x@y'}}}\n", "device 'mailto:x@y' is neither"),
        ("people: {x: {devices: {}}}\n", "people.x.devices: The mapping should have at least 1"),
        ("people: {svc: {devices: {d: 'sip:x@y'}}}\n", "'svc' is both a person and a service"),
        ("people: {x: {devices: {d: 'sip:x@y'}, current: dd}}\n", "unknown device 'dd'"),
        (
            "people: {x: {devices: {d: 'sip:x@y'}, current: [{device: e}]}}\n",
            "people.x.current[0].device: unknown device 'e'",
        ),
        ("people: {x: {devices: {d: 'sip:x@y'}, home_office: tue}}\n", "unknown device 'home'"),
        (
            "people: {x: {devices: {d: 'sip:x@y'}, home_office: {days: tue, device: e}}}\n",
            "people.x.home_office.device: unknown device 'e'",
        ),
        ("people: {x: {devices: {home: 'sip:x@y'}, home_office: tuu}}\n", "unknown day 'tuu'"),
        ("extensions: {'12': jan}\n", "extensions.12: '12' is not a valid phone number"),
        ("extensions: {'+49 2331 987654-1': bob}\n", "unknown person 'bob'"),
        ("extensions: {'+49 2331 987654-0': jan}\n", "is claimed twice in this plan"),
        (
            "extensions: {'+49 2331 987654-1': jan, '+4923319876541': eva}\n",
            "number '+4923319876541' is claimed twice",
        ),
        ("extensions: {'+49 2331 987654-1': {persn: jan}}\n", "did you mean 'person'"),
    ],
)
def test_section_problems(body: str, expected: str) -> None:
    found = problems(body, head_without(body))
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{name: r, then: [{ring: []}]}", "ring needs at least one target"),
        ("{name: r, then: [{ring: [jan], timeout: 15x}]}", "duration '15x' is not like 15s"),
        ("{name: r, then: [{ring: [jan], timeout: true}]}", "duration True is not a number"),
        ("{name: r, then: [{ring: [jan], timeout: 2h}]}", "duration '2h' is not like"),
        ("{name: r, then: [{ring: [jan], timeout: 61m}]}", "less than or equal to 3600"),
        ("{name: r, then: [{ring: [jan], on_busy: later}]}", "Input should be 'next' or 'final'"),
        ("{name: r, then: [{ring: [jan.desk, eva], parallel: false}]}", "one step per target"),
        ("{name: r, then: [{rign: [jan]}]}", "unknown key 'rign', did you mean 'ring'?"),
        ("{name: r, then: [hangup]}", "Input should be 'reject' or 'voicemail'"),
        ("{name: r, then: [{reject: 302}]}", "greater than or equal to 400"),
        ("{name: r, then: [{reject: {status: 486, reson: x}}]}", "did you mean 'reason'"),
        ("{name: r, then: [{announcement: ''}]}", "at least 1 character"),
        ("{name: r, then: []}", "should have at least 1 item"),
        ("{name: r}", "rules[0]: missing required key 'then'"),
        ("{name: r, then: reject, when: {wheekday: mon}}", "did you mean 'weekday'"),
        ("{name: r, then: reject, when: {weekday: mox}}", "unknown day 'mox'"),
        ("{name: r, then: reject, when: {schedule: nope}}", "unknown schedule 'nope'"),
        ("{name: r, then: reject, when: {schedule: [a, nope]}}", "schedule[1]: unknown schedule"),
        ("{name: r, then: reject, when: {schedule: {mon: 'x'}}}", "range 'x' is not HH:MM-HH:MM"),
        ("{name: r, then: reject, when: {caller: {lst: x}}}", "did you mean 'list'"),
        ("{name: r, then: reject, when: {caller: '+49 12'}}", "'+49 12' is not a valid phone"),
        ("{name: r, then: reject, when: {caller: {prefix: 'x1'}}}", "'x1' is not a number prefix"),
        ("{name: r, then: reject, when: {called: '+49 30 1234567'}}", "not one of this plan's"),
        ("{name: r, then: reject, when: {called: '12'}}", "'12' is not a valid phone number"),
        ("{name: r, then: reject, when: {presence: {jan: asleep}}}", "Input should be 'available'"),
        ("{name: r, then: reject, when: {presence: {jan: {nt: dnd}}}}", "did you mean 'not'"),
        ("{name: r, then: reject, when: {presence: {callee: dnd}}}", "needs an extensions section"),
        ("{name: r, then: [{ring: [callee]}]}", "'callee' needs an extensions section"),
        ("{name: r, then: [{ring: [svc.a3]}]}", "'svc.a3': unknown device 'a3'"),
        ("{name: r, then: [{ring: ['jan desk']}]}", "String should match pattern"),
        ("{name: r, then: reject, when: {holiday: perhaps}}", "Input should be a valid boolean"),
        ("{name: r, then: reject, when: {any: []}}", "should have at least 1 item"),
    ],
)
def test_rule_problems(rule: str, expected: str) -> None:
    found = problems(f"rules:\n  - {rule}\n")
    assert any(expected in p for p in found), found


def test_duplicate_rule_names() -> None:
    found = problems("rules:\n  - {name: r, then: reject}\n  - {name: r, then: reject}\n")
    assert found == ["<test>:11:6: rules[1].name: rule name 'r' is used twice"]


def test_a_broken_section_does_not_cause_false_reference_errors() -> None:
    found = problems(
        """\
        schedules: {s: 5}
        caller_lists: {l: 5}
        rules:
          - {name: r, when: {schedule: s, caller: l}, then: reject}
        """
    )
    assert len(found) == 2, found
    assert all("schedules.s" in p or "caller_lists.l" in p for p in found)


def test_broken_people_section_hides_reference_errors() -> None:
    head = "tenant: t\nname: T\nnumbers: ['+49 2331 987654-0']\npeople: 5\n"
    found = problems(
        "extensions: {'+49 2331 987654-1': bob}\nrules:\n"
        "  - {name: r, when: {presence: {bob: dnd}}, then: [{ring: [bob]}]}\n",
        head,
    )
    assert found == ["<test>:4:1: people: Input should be a mapping (key: value)"]


def test_load_plan_reports_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(DialPlanError) as info:
        load_plan(missing)
    assert str(info.value).startswith(f"{missing}:1:1: cannot read the file: No such file")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DialPlanError) as info:
        load_plan(binary)
    # issue 14: no codec wording, but where the bad byte is and what to do
    assert str(info.value) == (
        f"{binary}:1:1: byte 0xff ('ÿ' in Latin-1/Windows-1252) is not UTF-8:"
        " save the file as UTF-8"
    )


def test_python_words_become_yaml_words() -> None:
    found = problems("rules: {}\n")
    assert found == ["<test>:9:1: rules: Input should be a list"]


def test_wrong_type_for_the_time_zone() -> None:
    assert problems("timezone: 5\n") == ["<test>:9:1: timezone: Input should be a valid string"]


def test_nested_unknown_keys_at_two_levels() -> None:
    found = problems("rules:\n  - {name: r, then: [{ring: [jan], timout: 1}], wen: {}}\n")
    assert found == [
        "<test>:10:36: rules[0].then[0].timout: unknown key 'timout', did you mean 'timeout'?",
        "<test>:10:49: rules[0].wen: unknown key 'wen', did you mean 'when'?",
    ]


def test_a_duration_of_the_wrong_type() -> None:
    found = problems("rules:\n  - {name: r, then: [{ring: [jan], timeout: [1]}]}\n")
    assert any("duration [1] is not like 15s" in p for p in found), found


def test_announce_as_under_the_service_points_to_the_top_level() -> None:
    found = problems(
        "service:\n  svc: {devices: {a1: 'sip:a1@svc'}, announce_as: Test}\nrules: []\n",
        head_without("service:"),
    )
    assert found == [
        "<test>:8:38: service.svc.announce_as: announce_as names the business: write it at the"
        " top of the plan"
    ]
    assert problems("service: 5\n", head_without("service:")) == [
        "<test>:7:1: service: Input should be a mapping (key: value)"
    ]
    assert problems("service: {svc: 5}\n", head_without("service:")) == [
        "<test>:7:11: service.svc: Input should be a mapping"
    ]


def test_an_empty_section_is_the_default_and_an_empty_required_key_is_missing() -> None:
    p = plan("schedules:\ncaller_lists:\nrules:\n")
    assert p.rules == ()
    assert problems("name:\n", head_without("name:")) == ["<test>:8:1: name: needs a value"]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "jan.handy",
            "'jan.handy': unknown device 'handy', did you mean 'mobile'? ('handy' is German;"
            " jan's devices: desk, mobile)",
        ),
        ("jan.fax", "'jan.fax': unknown device 'fax' (jan's devices: desk, mobile)"),
        ("svc.handy", "'svc.handy': unknown device 'handy' (svc's devices: a1, a2)"),
        ("jan.dsk", "'jan.dsk': unknown device 'dsk', did you mean 'desk'?"),
    ],
)
def test_an_unknown_device_lists_the_devices_and_knows_some_german(ref: str, expected: str) -> None:
    found = problems(f"rules: [{{name: r, then: [{{ring: [{ref}]}}]}}]\n")
    assert found == [f"<test>:9:34: rules[0].then[0].ring[0]: {expected}"]


def test_an_unknown_current_device_lists_the_devices() -> None:
    body = (
        "people: {x: {devices: {desk: 'sip:x@y', mobile: 'tel:+491701234567'}, current: Handy}}\n"
    )
    assert problems(body, head_without(body)) == [
        "<test>:6:71: people.x.current: unknown device 'Handy', did you mean 'mobile'?"
        " ('Handy' is German; x's devices: desk, mobile)"
    ]
