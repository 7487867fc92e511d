"""Every example dial plan in dialplans/ loads, and the set of them loads as one DialPlanSet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rules import CallInfo, FinalKind, PresenceState, decide, load_dialplans, load_plan

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
FILES = sorted(DIALPLANS.glob("*.yaml"))
BERLIN = ZoneInfo("Europe/Berlin")


def test_there_are_examples() -> None:
    assert len(FILES) >= 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_loads_without_warnings(path: Path) -> None:
    plan = load_plan(path)
    assert plan.tenant == path.stem
    assert plan.numbers
    assert plan.warnings == ()


def test_all_examples_form_one_set() -> None:
    plans = load_dialplans([DIALPLANS])
    assert len(plans) == len(FILES)
    for plan in plans:
        for number in plan.numbers:
            assert plans.for_number(number) is plan


def test_tischlerei_routes_a_weekday_call_to_jan_first() -> None:
    plan = load_plan(DIALPLANS / "tischlerei-mueller.yaml")
    call = CallInfo("+49 2331 987654-0", "+49 30 1234567")
    decision = decide(plan, call, {}, dt.datetime(2027, 5, 26, 10, 0, tzinfo=BERLIN))
    assert decision.rule == "Jan in the workshop"
    assert [s.targets[0].ref for s in decision.steps] == [
        "jan.desk",
        "jan.mobile",
        "heimbuero.assistant",
    ]
    assert [s.timeout for s in decision.steps] == [15, 20, 60]
    assert decision.final.kind is FinalKind.VOICEMAIL
    assert decision.announce_as == "Tischlerei Müller"


def test_tischlerei_on_a_holiday_goes_to_the_service() -> None:
    plan = load_plan(DIALPLANS / "tischlerei-mueller.yaml")
    call = CallInfo("+4923319876540", None)
    when = dt.datetime(2027, 5, 27, 10, 0, tzinfo=BERLIN)  # Fronleichnam, a holiday in NW
    decision = decide(plan, call, {"jan": PresenceState.AVAILABLE}, when)
    assert decision.rule == "otherwise the service"
    assert any("Fronleichnam" in line for line in decision.trace)


def test_privacy_store_caller_defaults_to_full_and_can_be_masked() -> None:
    from rules import load_plan_text

    base = 'tenant: t\nname: T\nnumbers: ["+49 30 1234560"]\nrules: [{name: r, then: reject}]\n'
    assert load_plan_text(base).store_caller == "full"
    assert load_plan_text(base + "privacy: {store_caller: masked}\n").store_caller == "masked"


def test_sanitaer_huber_in_munich_is_closed_on_mariae_himmelfahrt() -> None:
    plan = load_plan(DIALPLANS / "sanitaer-huber.yaml")
    call = CallInfo("+49 89 4567890", "+49 30 1234567")
    when = dt.datetime(2028, 8, 15, 10, 0, tzinfo=BERLIN)  # a Tuesday
    decision = decide(plan, call, {}, when)
    assert decision.rule == "closed"
    assert any("public holiday (Mariä Himmelfahrt)" in line for line in decision.trace)
    weekday = decide(plan, call, {}, when - dt.timedelta(days=1))
    assert weekday.rule == "office hours"


def test_dachdeckerei_in_dresden_is_open_on_fronleichnam() -> None:
    plan = load_plan(DIALPLANS / "dachdeckerei-richter.yaml")
    when = dt.datetime(2027, 5, 27, 10, 0, tzinfo=BERLIN)  # Fronleichnam: only in some towns
    decision = decide(plan, CallInfo("+49 351 1234567", "+49 30 1234567"), {}, when)
    assert decision.rule == "office hours"
