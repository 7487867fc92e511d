"""Extensions: one plan answering many numbers, rules as templates, "callee"."""

from __future__ import annotations

from rules import DialPlan, PresenceState, load_plan_text
from tests.rules.helpers import at, refs, run

HEAD = """\
tenant: stadt
name: Stadt
numbers: ["+49 5121 301-0"]
service:
  zentrale: {devices: {p1: "sip:z1@rathaus"}}
people:
  mayer:
    devices: {desk: "sip:3101@rathaus", home: "sip:mayer@home"}
    home_office: tue
  huber:
    devices: {desk: "sip:3102@rathaus"}
extensions:
  "+49 5121 301-101": mayer
  "+49 5121 301-102":
    person: huber
    rules:
      - name: huber's own rule
        when: {caller: "+49 30 1234567", called: "+49 5121 301-102"}
        then: [{ring: [callee.desk]}]
rules:
  - name: extension
    when: {extension: true, presence: {callee: available}}
    then:
      - {ring: [callee], timeout: 20s}
      - {ring: [callee.home, zentrale], timeout: 20s}
  - {name: callee busy, when: {presence: {callee: busy}}, then: voicemail}
  - {name: switchboard, when: {extension: false}, then: [{ring: [zentrale]}]}
  - {name: rest, then: reject}
"""
PLAN = load_plan_text(HEAD, "<stadt>")
MONDAY = at(2027, 5, 24)
TUESDAY = at(2027, 5, 25)
SWITCHBOARD = "+495121301000"


def test_extension_call_rings_the_callee_by_home_office_days() -> None:
    monday = run(PLAN, MONDAY, called="+495121301101")
    assert monday.rule == "extension"
    assert [[t.uri for t in s.targets] for s in monday.steps] == [
        ["sip:3101@rathaus"],
        ["sip:mayer@home", "sip:z1@rathaus"],
    ]
    tuesday = run(PLAN, TUESDAY, called="05121 301101")
    assert [t.uri for t in tuesday.steps[0].targets] == ["sip:mayer@home"]
    assert tuesday.trace[1] == (
        "rule 'extension': called +495121301101 is the extension of mayer and "
        "mayer is available (wanted available) → match"
    )
    assert "  callee rings mayer.home (Tue is in 'tue')" in tuesday.trace


def test_a_callee_device_the_person_lacks_is_skipped() -> None:
    decision = run(PLAN, MONDAY, called="+495121301102")
    assert refs(decision) == [["callee"], ["zentrale"]]
    assert "  callee.home: huber has no device 'home'" in decision.trace


def test_extension_rules_come_first() -> None:
    decision = run(PLAN, MONDAY, caller="030 1234567", called="+495121301102")
    assert decision.rule == "huber's own rule"
    assert decision.steps[0].targets[0].uri == "sip:3102@rathaus"
    other = run(PLAN, MONDAY, caller="030 1234567", called="+495121301101")
    assert other.rule == "extension"


def test_presence_of_the_callee() -> None:
    busy = {"mayer": PresenceState.BUSY}
    decision = run(PLAN, MONDAY, called="+495121301101", presence=busy)
    assert decision.rule == "callee busy"
    assert decision.trace[2] == "rule 'callee busy': mayer is busy (wanted busy) → match"


def test_the_main_number_has_no_callee() -> None:
    decision = run(PLAN, MONDAY, called=SWITCHBOARD)
    assert decision.rule == "switchboard"
    assert decision.trace[1] == "rule 'extension': only for calls to an extension → no match"
    assert decision.trace[2] == (
        "rule 'callee busy': called +495121301000 is not an extension: no callee → no match"
    )
    assert decision.trace[3] == (
        "rule 'switchboard': called +495121301000 is not an extension → match"
    )


def test_callee_steps_on_the_main_number_are_skipped() -> None:
    plan = load_plan_text(
        HEAD.replace(
            "  - {name: callee busy",
            "  - {name: any, then: [{ring: [callee]}, {ring: [callee.desk]}, {ring: [zentrale]}]}"
            "\n  - {name: callee busy",
        ),
        "<stadt>",
    )
    decision = run(plan, MONDAY, called=SWITCHBOARD)
    assert decision.rule == "any"
    assert refs(decision) == [["zentrale"]]
    assert decision.trace[-4:] == (
        "  callee: called +495121301000 is not an extension, nobody to ring",
        "  a step with no target left is skipped",
        "  callee.desk: called +495121301000 is not an extension, nobody to ring",
        "  a step with no target left is skipped",
    )


def test_a_big_municipal_plan_loads_and_indexes_every_extension() -> None:
    lines = [HEAD.split("people:")[0], "people:\n"]
    for i in range(1400):
        office = ', home_office: "mon,wed"' if i < 900 else ""
        devices = f'{{desk: "sip:{4000 + i}@rathaus", home: "sip:p{i}@home"}}'
        lines.append(f"  p{i}: {{devices: {devices}{office}}}\n")
    lines.append("extensions:\n")
    lines.extend(f'  "+49 5121 302-{1000 + i}": p{i}\n' for i in range(1400))
    lines.append("rules:" + HEAD.split("\nrules:")[1])
    plan = load_plan_text("".join(lines), "<big>")
    assert len(plan.extensions) == 1400
    assert len(plan.numbers) == 1401
    wednesday = at(2027, 5, 26)
    assert run(plan, wednesday, called="+4951213021899").steps[0].targets[0].uri == "sip:p899@home"
    assert (
        run(plan, wednesday, called="+4951213021900").steps[0].targets[0].uri == "sip:4900@rathaus"
    )


def cache_sizes(plan: DialPlan) -> tuple[int, int]:
    rules = [*plan.rules, *(r for e in plan.extensions.values() for r in e.rules)]
    steps = sum(len(step._built) for rule in rules for step in rule.steps)
    targets = sum(len(person._targets) for person in plan.people.values())
    return steps, targets


def test_loading_builds_every_step_a_call_can_need() -> None:
    plan = load_plan_text(HEAD, "<fresh>")
    before = cache_sizes(plan)
    assert before[0] > 0
    for number in plan.numbers:
        for day in (MONDAY, TUESDAY):
            for caller in (None, "+49 30 1234567"):
                for state in PresenceState:
                    run(plan, day, caller=caller, called=number, presence={"mayer": state})
    assert cache_sizes(plan) == before
