"""Warnings for rules that can never match (rules/reach.py): shadowed by an earlier rule, or
contradicting themselves. Conservative: each "no warning" case below is a rule that can match."""

from __future__ import annotations

import pytest

from rules import load_plan_text
from tests.rules.helpers import HEAD, plan

LISTS = """\
caller_lists: {vip: ["+49 171 5550100"], blocked: ["+49 151 12345678"], family: ["+49 30 1234567"]}
schedules:
  office: {mon-fri: "08:00-17:00"}
  morning: {mon-fri: "08:00-12:00"}
  evening: {mon-fri: "18:00-22:00"}
  night: {fri: "22:00-06:00"}
  empty: {mon: []}
  always: {daily: "00:00-24:00", on_closed_days: true}
"""
START = len((HEAD + LISTS).splitlines()) + 2  # the line of the first rule


def warnings(*whens: str) -> list[str]:
    """The warnings of a plan with one rule per ``when`` (and a last rule without conditions)."""
    rules = "".join(f"  - {{name: r{i}, when: {w}, then: reject}}\n" for i, w in enumerate(whens))
    p = plan(LISTS + "rules:\n" + rules + "  - {name: rest, then: voicemail}\n")
    return [str(w) for w in p.warnings]


def shadowed(later: int, earlier: int) -> str:
    return (
        f"<test>:{START + later}:5: rules[{later}]: rule 'r{later}' never matches: the earlier"
        f" rule 'r{earlier}' (<test>:{START + earlier}) matches every call it would match"
    )


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("{schedule: office}", "{schedule: office, caller: vip}"),
        ("{weekday: mon-fri}", "{weekday: mon, caller: vip}"),
        ("{weekday: mon-fri}", "{schedule: morning}"),
        ("{presence: {jan: [available, away]}}", "{presence: {jan: away}, caller: vip}"),
        ("{presence: {jan: {not: [dnd]}}}", "{presence: {jan: available}}"),
        ("{caller: [vip, blocked]}", "{caller: vip}"),
        ("{caller: {prefix: '+49 171'}}", "{caller: '+49 171 5550100'}"),
        ("{caller: {prefix: '+49 17'}}", "{caller: {prefix: '+49 171'}}"),
        ("{called: ['+49 2331 987654-0']}", "{called: '+49 2331 987654-0', caller: vip}"),
        ("{closed: true}", "{holiday: true}"),
        ("{closed: true}", "{vacation: true}"),
        ("{holiday: false}", "{closed: false}"),
        ("{schedule: office}", "{all: [{schedule: office}, {caller: vip}]}"),
        ("{schedule: office}", "{schedule: [office], not: {caller: vip}}"),
        ("{caller: vip}", "{caller: [vip], presence: {eva: away}}"),
    ],
)
def test_a_rule_that_an_earlier_one_catches_is_never_matched(earlier: str, later: str) -> None:
    assert warnings(earlier, later) == [shadowed(1, 0)]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("{schedule: office, caller: vip}", "{schedule: office}"),
        ("{presence: {jan: available}}", "{presence: {eva: available}}"),
        ("{presence: {jan: available}}", "{presence: {jan: [available, away]}}"),
        ("{schedule: morning}", "{schedule: office}"),
        ("{schedule: office}", "{weekday: mon}"),
        ("{caller: vip}", "{caller: [vip, family]}"),
        ("{caller: {prefix: '+49 171'}}", "{caller: {prefix: '+49 17'}}"),
        ("{caller: vip}", "{caller: family}"),
        ("{holiday: true}", "{closed: true}"),
        ("{called: '+49 2331 987654-0'}", "{caller: vip}"),
        ("{weekday: mon}", "{caller: vip}"),
        ("{not: {caller: vip}}", "{not: {caller: blocked}}"),
        ("{caller: anonymous}", "{caller: {anonymous: false}}"),
        ("{schedule: [morning, evening]}", "{schedule: office}"),
    ],
)
def test_no_warning_when_the_later_rule_can_match(earlier: str, later: str) -> None:
    assert warnings(earlier, later) == []


@pytest.mark.parametrize(
    ("when", "why"),
    [
        (
            "{schedule: office, weekday: sat}",
            "schedule 'office' (Mon 08:00-17:00, Tue 08:00-17:00, Wed 08:00-17:00, Thu 08:00-17:00,"
            " Fri 08:00-17:00) and weekday 'sat' have no time in common",
        ),
        (
            "{all: [{schedule: morning}, {schedule: evening}]}",
            "schedule 'morning' (Mon 08:00-12:00, Tue 08:00-12:00, Wed 08:00-12:00, Thu"
            " 08:00-12:00, Fri 08:00-12:00) and schedule 'evening' (Mon 18:00-22:00, Tue"
            " 18:00-22:00, Wed 18:00-22:00, Thu 18:00-22:00, Fri 18:00-22:00) have no time in"
            " common",
        ),
        (
            "{schedule: [morning, evening], weekday: sun}",
            "schedule [morning, evening] and weekday 'sun' have no time in common",
        ),
        ("{schedule: {sat: '09:00-12:00'}, weekday: sun}", "the inline schedule (Sat 09:00-12:00)"
         " and weekday 'sun' have no time in common"),
        ("{schedule: empty}", "schedule 'empty' (never) has no time in it"),
        ("{holiday: true, closed: false}", "'closed: false' and 'holiday: true' contradict"),
        ("{vacation: true, closed: false}", "'closed: false' and 'vacation: true' contradict"),
        (
            "{schedule: morning, holiday: true}",
            "schedule 'morning' (Mon 08:00-12:00, Tue 08:00-12:00, Wed 08:00-12:00, Thu"
            " 08:00-12:00, Fri 08:00-12:00) does not apply on closed days, and 'holiday: true'"
            " asks for one (add on_closed_days: true to the schedule)",
        ),
    ],
)  # fmt: skip
def test_a_rule_whose_conditions_contradict_is_never_matched(when: str, why: str) -> None:
    assert warnings(when) == [f"<test>:{START}:5: rules[0]: rule 'r0' never matches: {why}"]


@pytest.mark.parametrize(
    "when",
    [
        "{schedule: night, weekday: sat}",  # Friday 22:00 to Saturday 06:00
        "{schedule: night, holiday: true}",  # Saturday morning may be a holiday
        "{schedule: always, holiday: true}",  # on_closed_days
        "{schedule: office, weekday: fri}",
        "{schedule: office, closed: false, holiday: false}",
        "{any: [{weekday: sat}, {schedule: office}], weekday: sat}",
    ],
)
def test_no_warning_for_conditions_that_can_hold_together(when: str) -> None:
    assert warnings(when) == []


def test_a_contradicting_rule_shadows_nothing() -> None:
    assert warnings("{schedule: office, weekday: sat}", "{schedule: office, weekday: sat}") == [
        f"<test>:{START}:5: rules[0]: rule 'r0' never matches: schedule 'office' (Mon"
        " 08:00-17:00, Tue 08:00-17:00, Wed 08:00-17:00, Thu 08:00-17:00, Fri 08:00-17:00) and"
        " weekday 'sat' have no time in common",
        f"<test>:{START + 1}:5: rules[1]: rule 'r1' never matches: schedule 'office' (Mon"
        " 08:00-17:00, Tue 08:00-17:00, Wed 08:00-17:00, Thu 08:00-17:00, Fri 08:00-17:00) and"
        " weekday 'sat' have no time in common",
    ]


def test_an_empty_when_catches_every_later_rule() -> None:
    assert warnings("{}", "{caller: vip}") == [shadowed(1, 0), shadowed(2, 0).replace("r2", "rest")]


def test_rules_of_an_extension_are_checked_among_themselves() -> None:
    p = plan(
        "extensions:\n"
        "  '+49 2331 987654-1':\n"
        "    person: jan\n"
        "    rules:\n"
        "      - {name: first, then: reject}\n"
        "      - {name: second, when: {caller: anonymous}, then: voicemail}\n"
        "rules:\n"
        "  - {name: for jan, when: {extension: true}, then: [{ring: [callee]}]}\n"
        "  - {name: main, then: [{ring: [jan]}]}\n"
    )
    assert [str(w) for w in p.warnings] == [
        "<test>:14:9: extensions.+49 2331 987654-1.rules[1]: rule 'second' never matches: the"
        " earlier rule 'first' (<test>:13) matches every call it would match"
    ]


def test_after_a_rule_without_conditions_one_warning_says_it_all() -> None:
    p = load_plan_text(
        HEAD + "rules:\n  - {name: all, then: reject}\n"
        "  - {name: late, when: {caller: anonymous}, then: voicemail}\n"
        "  - {name: later, then: voicemail}\n",
        "<test>",
    )
    assert [str(w) for w in p.warnings] == [
        "<test>:11:5: rules[1]: rules after 'all' are never tried: it has no conditions"
    ]
