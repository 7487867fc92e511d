"""decide(): conditions on caller, called number, presence; steps, finals, the trace."""

from __future__ import annotations

import importlib

import pytest

from rules import CallInfo, Failure, FinalKind, OnFailure, PresenceState, decide
from rules.decision import Final, Step, Target
from rules.trace import Trace
from tests.rules.helpers import MAIN, at, plan, refs, run

A = PresenceState.AVAILABLE
MONDAY = at(2027, 5, 24, 10)

CALLERS = """\
caller_lists:
  vip: ["+49 171 5550100", "0171 5550101"]
  spam: ["+49 1520*", "+49 160 9998887"]
rules:
  - {name: anon, when: {caller: anonymous}, then: reject}
  - {name: vip, when: {caller: vip}, then: reject}
  - {name: spam, when: {caller: [spam, "+49 30 1234567"]}, then: reject}
  - {name: exact, when: {caller: {number: ["+49 89 4567890"]}}, then: reject}
  - {name: prefix, when: {caller: {prefix: "0049 40"}}, then: reject}
  - {name: named list, when: {caller: {list: [vip, spam]}}, then: reject}
  - {name: not anonymous, when: {caller: {anonymous: false}}, then: voicemail}
"""


@pytest.mark.parametrize(
    ("caller", "rule"),
    [
        (None, "anon"),
        ("anonymous", "anon"),
        ("Restricted", "anon"),
        ("", "anon"),
        ("+491715550100", "vip"),
        ("0171 5550101", "vip"),
        ("+49 1520 1234567", "spam"),
        ("+491609998887", "spam"),
        ("030 1234567", "spam"),
        ("+49894567890", "exact"),
        ("+49 40 1234567", "prefix"),
        ("+49 221 1234567", "not anonymous"),
        ("garbage", "not anonymous"),
        ("sip:anonymous@anonymous.invalid", "anon"),
        ("sip:+491715550100@carrier.example;user=phone", "vip"),
        ("sips:0171 5550101@carrier.example", "vip"),
        ("tel:+49-89-4567890", "exact"),
    ],
)
def test_caller_conditions(caller: str | None, rule: str) -> None:
    assert run(plan(CALLERS), MONDAY, caller).rule == rule


def test_caller_trace_texts() -> None:
    trace = run(plan(CALLERS), MONDAY, "+49 221 1234567").trace
    assert trace[1:] == (
        "rule 'anon': caller +492211234567 is not anonymous → no match",
        "rule 'vip': caller +492211234567 not in list 'vip' → no match",
        "rule 'spam': none of: caller +492211234567 not in list 'spam'; "
        "caller +492211234567 not in number +49301234567 → no match",
        "rule 'exact': caller +492211234567 not in number +49894567890 → no match",
        "rule 'prefix': caller +492211234567 not in prefix +4940 → no match",
        "rule 'named list': caller +492211234567 not in list 'vip', 'spam' → no match",
        "rule 'not anonymous': caller +492211234567 is not anonymous → match",
    )
    anonymous = run(plan(CALLERS.replace("{caller: anonymous}", "{caller: vip}")), MONDAY, None)
    assert anonymous.trace[1] == "rule 'anon': caller is anonymous, not in list 'vip' → no match"
    assert anonymous.rule is None


def test_anonymous_false_does_not_match_anonymous_callers() -> None:
    p = plan("rules:\n  - {name: known, when: {caller: {anonymous: false}}, then: reject}\n")
    decision = run(p, MONDAY, None)
    assert decision.rule is None
    assert decision.trace[1] == "rule 'known': caller is anonymous → no match"


def test_called_number_conditions_one_plan_two_numbers() -> None:
    p = plan(
        'numbers: ["+49 2331 987654-0", "+49 2331 987654-9"]\n'
        "rules:\n  - {name: emergency, when: {called: '02331 987654-9'}, then: reject}\n"
        "  - {name: office, when: {called: ['+4923319876540']}, then: voicemail}\n",
        head="tenant: t\nname: T\n",
    )
    assert run(p, MONDAY, called="+4923319876549").rule == "emergency"
    office = run(p, MONDAY, called="02331 9876540")
    assert office.rule == "office"
    assert office.trace[1] == (
        "rule 'emergency': called +4923319876540 is not one of +4923319876549 → no match"
    )
    assert (
        office.trace[2] == "rule 'office': called +4923319876540 is one of +4923319876540 → match"
    )


PRESENCE = """\
rules:
  - {name: dnd, when: {presence: {jan: dnd}}, then: reject}
  - {name: away or busy, when: {presence: {jan: [away, busy]}}, then: reject}
  - {name: both, when: {presence: {jan: available, eva: {not: [offline]}}}, then: reject}
  - {name: rest, then: voicemail}
"""


@pytest.mark.parametrize(
    ("presence", "rule"),
    [
        ({}, "both"),  # missing from the snapshot = available
        ({"jan": PresenceState.DND}, "dnd"),
        ({"jan": PresenceState.AWAY}, "away or busy"),
        ({"jan": PresenceState.BUSY}, "away or busy"),
        ({"jan": PresenceState.OFFLINE}, "rest"),
        ({"eva": PresenceState.OFFLINE}, "rest"),
        ({"eva": PresenceState.DND}, "both"),
    ],
)
def test_presence_conditions(presence: dict[str, PresenceState], rule: str) -> None:
    assert run(plan(PRESENCE), MONDAY, presence=presence).rule == rule


def test_presence_trace() -> None:
    decision = run(plan(PRESENCE), MONDAY, presence={"eva": PresenceState.OFFLINE})
    assert decision.trace[1] == "rule 'dnd': jan is available (wanted dnd) → no match"
    assert decision.trace[3] == ("rule 'both': eva is offline (wanted not offline) → no match")


def test_combinators_and_weekday() -> None:
    p = plan(
        """\
        rules:
          - name: all
            when: {all: [{weekday: mon}, {presence: {jan: away}}]}
            then: reject
          - name: any
            when: {any: [{weekday: sat}, {presence: {jan: dnd}}]}
            then: reject
          - name: not
            when: {not: {weekday: mon-fri}}
            then: reject
          - {name: empty when, when: {}, then: voicemail}
        """
    )
    assert run(p, MONDAY, presence={"jan": PresenceState.AWAY}).rule == "all"
    assert run(p, MONDAY, presence={"jan": PresenceState.DND}).rule == "any"
    assert run(p, at(2027, 5, 29)).rule == "any"
    assert run(p, at(2027, 5, 30)).rule == "not"
    decision = run(p, MONDAY)
    assert decision.rule == "empty when"
    assert decision.trace[1] == "rule 'all': jan is available (wanted away) → no match"
    assert decision.trace[2] == (
        "rule 'any': none of: Mon is not in 'sat'; jan is available (wanted dnd) → no match"
    )
    assert decision.trace[3] == "rule 'not': not (Mon is in 'mon-fri') → no match"
    assert decision.trace[4] == "rule 'empty when': no conditions → match"
    both = run(p, MONDAY, presence={"jan": PresenceState.AWAY})
    assert both.trace[1] == "rule 'all': Mon is in 'mon' and jan is away (wanted away) → match"


def test_nested_empty_conditions_always_hold() -> None:
    p = plan("rules:\n  - {name: r, when: {all: [{}], any: [{}], not: {not: {}}}, then: reject}\n")
    assert run(p, MONDAY).rule == "r"


def test_steps_targets_timeouts_and_failure_handling() -> None:
    p = plan(
        """\
        rules:
          - name: r
            then:
              - {ring: [jan.desk], timeout: 15s}
              - {ring: [jan.mobile], timeout: 1m30s, on_busy: final, on_no_answer: final}
              - {ring: [svc], timeout: 60, on_unreachable: final, confirm: true}
              - {ring: [svc.a1, jan.desk], timeout: 2.5, parallel: true}
              - {ring: svc.a2}
              - {reject: {status: 486}}
        """
    )
    decision = run(p, MONDAY)
    assert refs(decision) == [
        ["jan.desk"],
        ["jan.mobile"],
        ["svc", "svc"],
        ["svc.a1", "jan.desk"],
        ["svc.a2"],
    ]
    first, second, third, fourth, fifth = decision.steps
    assert first == Step((Target("jan.desk", "sip:201@office", "jan", "desk"),), 15.0)
    assert second.timeout == 90.0
    assert second.on(Failure.BUSY) is OnFailure.FINAL
    assert second.on(Failure.NO_ANSWER) is OnFailure.FINAL
    assert second.on(Failure.UNREACHABLE) is OnFailure.NEXT
    assert third.parallel
    assert third.confirm
    assert [t.uri for t in third.targets] == ["sip:a1@svc", "sip:a2@svc"]
    assert all(t.is_service and t.owner == "svc" for t in third.targets)
    assert third.on(Failure.DECLINED) is OnFailure.FINAL  # declined counts as unreachable
    assert fourth.parallel
    assert fourth.timeout == 2.5
    assert fifth.timeout == 20.0  # the default
    assert not fifth.parallel
    assert decision.final == Final(FinalKind.REJECT, 486, "Busy Here")
    assert second.targets[0].uri == "tel:+491701234567"


@pytest.mark.parametrize(
    ("then", "final"),
    [
        ("reject", Final(FinalKind.REJECT, 603, "Decline")),
        ("{reject: 404}", Final(FinalKind.REJECT, 404, "Not Found")),
        ("{reject: 499}", Final(FinalKind.REJECT, 499, "Rejected")),
        ("{reject: null}", Final(FinalKind.REJECT, 603, "Decline")),
        ("{reject: {status: 480, reason: Ruhetag}}", Final(FinalKind.REJECT, 480, "Ruhetag")),
        ("voicemail", Final(FinalKind.VOICEMAIL, 480, "Temporarily Unavailable")),
        (
            "{announcement: Geschlossen}",
            Final(FinalKind.ANNOUNCEMENT, 480, "Temporarily Unavailable", "Geschlossen"),
        ),
        ("[{ring: [jan]}]", Final(FinalKind.REJECT, 480, "Temporarily Unavailable")),
    ],
)
def test_final_actions(then: str, final: Final) -> None:
    decision = run(plan(f"rules:\n  - {{name: r, then: {then}}}\n"), MONDAY)
    assert decision.final == final


def test_no_rule_matches_rejects_with_480_and_says_so() -> None:
    p = plan("rules:\n  - {name: only jan away, when: {presence: {jan: away}}, then: reject}\n")
    decision = run(p, MONDAY, "+49 30 1234567")
    assert decision.rule is None
    assert decision.steps == ()
    assert decision.final == Final(FinalKind.REJECT, 480, "Temporarily Unavailable")
    assert decision.trace == (
        "call from +49301234567 to +4923319876540 at Mon 2027-05-24 10:00 CEST (Europe/Berlin)",
        "rule 'only jan away': jan is available (wanted away) → no match",
        "no rule matched → reject 480 Temporarily Unavailable",
    )
    assert decision.tenant == "test"
    assert decision.announce_as == "Test GmbH"
    [warning] = p.warnings
    assert "the last rule 'only jan away' has conditions" in str(warning)


def test_plan_without_rules_warns_and_rejects() -> None:
    p = plan("announce_as: Test\n")
    assert [w.message for w in p.warnings] == [
        "the plan has no rules: every call is rejected with 480"
    ]
    decision = run(p, MONDAY)
    assert decision.final.sip_status == 480
    assert decision.announce_as == "Test"


def test_rules_after_a_rule_without_conditions_are_never_tried() -> None:
    p = plan("rules:\n  - {name: all, then: reject}\n  - {name: late, then: voicemail}\n")
    assert [str(w) for w in p.warnings] == [
        "<test>:11:5: rules[1]: rules after 'all' are never tried: it has no conditions"
    ]


def test_plan_without_numbers_warns() -> None:
    p = plan("rules: [{name: r, then: reject}]\n", head="tenant: t\nname: T\n")
    assert [w.message for w in p.warnings] == ["the plan answers no number"]


def test_ringing_the_person_uses_the_current_device() -> None:
    p = plan(
        """\
        people:
          anna:
            devices: {desk: "sip:3101@rathaus", home: "sip:anna@home"}
            home_office: "tue, thu"
          ben:
            devices: {desk: "sip:3102@rathaus", soft: "sip:ben@home", mobile: "tel:+491701234567"}
            home_office: {days: fri, device: soft}
            current: mobile
          cleo:
            devices: {desk: "sip:3103@rathaus", mobile: "tel:+491701234568"}
            current:
              - {when: {presence: {cleo: away}}, device: mobile}
          dora:
            devices: {desk: "sip:3104@rathaus"}
            current: [{device: desk}]
        schedules:
          evening: {daily: "18:00-23:00"}
        rules:
          - {name: r, then: [{ring: [anna, ben.current, cleo, dora], timeout: 10s}]}
        """,
        head="tenant: t\nname: T\nnumbers: ['+49 2331 987654-0']\n",
    )
    tuesday = run(p, at(2027, 5, 25))
    assert [(t.owner, t.device) for t in tuesday.steps[0].targets] == [
        ("anna", "home"),
        ("ben", "mobile"),
        ("cleo", "desk"),
        ("dora", "desk"),
    ]
    assert tuesday.steps[0].parallel
    assert "  anna rings anna.home (Tue is in 'tue, thu')" in tuesday.trace
    assert "  ben.current rings ben.mobile (default device: Tue is not in 'fri')" in tuesday.trace
    assert "  cleo rings cleo.desk (default device: cleo is available (wanted away))" in (
        tuesday.trace
    )
    assert "  dora rings dora.desk (always)" in tuesday.trace
    friday = run(p, at(2027, 5, 28), presence={"cleo": PresenceState.AWAY})
    assert [t.device for t in friday.steps[0].targets] == ["desk", "soft", "mobile", "desk"]


def test_same_device_twice_in_a_step_rings_once() -> None:
    p = plan("rules:\n  - {name: r, then: [{ring: [jan, eva, jan.desk, jan.mobile]}]}\n")
    decision = run(p, MONDAY)
    assert refs(decision) == [["jan", "eva", "jan.mobile"]]
    assert decision.steps[0].parallel
    static = run(plan("rules:\n  - {name: r, then: [{ring: [svc, svc.a1, jan.desk]}]}\n"), MONDAY)
    assert refs(static) == [["svc", "svc", "jan.desk"]]
    single = run(plan("rules:\n  - {name: r, then: [{ring: [jan, jan.desk]}]}\n"), MONDAY)
    assert refs(single) == [["jan"]]
    assert not single.steps[0].parallel


def test_decide_is_deterministic_and_pure() -> None:
    p = plan(CALLERS)
    call = CallInfo(MAIN, "+49 171 5550100")
    assert decide(p, call, {}, MONDAY) == decide(p, call, {}, MONDAY)
    assert decide(p, call, {}, MONDAY).trace == decide(p, call, {}, MONDAY).trace


def test_trace_is_written_on_first_read_and_behaves_like_a_tuple() -> None:
    p = plan(CALLERS)
    first = run(p, MONDAY, "+49 171 5550100")
    second = run(p, MONDAY, "+49 171 5550100")
    assert isinstance(first.trace, Trace)
    assert first.trace == second.trace
    assert first.trace != "not a trace"
    assert len(first.trace) == 3
    assert list(first.trace) == [first.trace[0], *first.trace[1:]]
    assert repr(first.trace).startswith("Trace(('call from +491715550100")
    assert first == second  # the trace does not take part in comparisons


def test_trace_of_matching_any_and_holiday_schedules() -> None:
    p = plan(
        """\
        holidays: {country: DE, subdivision: NW}
        schedules:
          always: {daily: "00:00-24:00", on_closed_days: true}
        rules:
          - {name: any, when: {any: [{weekday: sat}, {schedule: always}]}, then: reject}
        """
    )
    decision = run(p, at(2027, 1, 1))
    assert decision.trace[1] == (
        "rule 'any': Fri 10:00 is in Fri 00:00-24:00 of schedule 'always' → match"
    )


def test_the_number_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # rules.decide is also the name of the function that rules/__init__ exports
    monkeypatch.setattr(importlib.import_module("rules.decide"), "_MEMO_MAX", 3)
    p = plan(CALLERS)
    for i in range(6):
        assert run(p, MONDAY, f"0221 12345{i:02d}", called="02331 987654-0").rule == (
            "not anonymous"
        )
        assert run(p, MONDAY, " Anonymous ").rule == "anon"
    assert len(p._numbers) <= 3
