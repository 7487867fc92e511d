"""The generated municipal plan (bench/gen_municipality.py) is valid and routes as intended."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from bench.gen_municipality import extension_number, generate
from bench.gen_municipality import main as generate_main
from rules import CallInfo, DialPlan, PresenceState, decide, load_plan
from switch import cli

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("muni") / "stadtverwaltung.yaml"
    assert generate_main([str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def spec(plan_file: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(plan_file.read_text(encoding="utf-8"), Loader=loader)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def plan(plan_file: Path) -> DialPlan:
    return load_plan(plan_file)


def test_rufweiche_check_accepts_the_generated_plan(plan_file: Path) -> None:
    result = CliRunner().invoke(cli.main, ["--lang", "en", "check", str(plan_file)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "stadtverwaltung-hagen: Stadtverwaltung Hagen, 1401 numbers, 1400 people, 8 rules, "
        "1400 extensions, holidays DE-NW"
    )
    assert result.stderr == ""  # no warnings either


def test_shape(spec: dict[str, Any], plan: DialPlan) -> None:
    assert len(spec["people"]) == 1400
    assert len(spec["extensions"]) == 1400
    remote = [p for p in spec["people"].values() if "home_office" in p]
    assert len(remote) == 900
    assert len(plan.extensions) == 1400
    assert len(plan.numbers) == 1401


def test_generation_is_deterministic_and_seeded() -> None:
    assert generate(50, 20, seed=7) == generate(50, 20, seed=7)
    assert generate(50, 20, seed=7) != generate(50, 20, seed=8)


@pytest.mark.parametrize(("seats", "home_office"), [(0, 0), (9000, 0), (10, 11), (10, -1)])
def test_generate_rejects_impossible_sizes(seats: int, home_office: int) -> None:
    with pytest.raises(ValueError, match="between"):
        generate(seats, home_office)


def _day_of_week(index: int) -> datetime:
    """Monday 7 June 2027 + index days, 10:00 Berlin (an ordinary working week in NRW)."""
    return datetime(2027, 6, 7 + index, 10, 0, tzinfo=BERLIN)


def test_home_office_day_rings_the_home_device(spec: dict[str, Any], plan: DialPlan) -> None:
    heads = {
        spec["extensions"][k]["person"]
        for k in spec["extensions"]
        if isinstance(spec["extensions"][k], dict)
    }
    person_id, person = next(
        (pid, p) for pid, p in spec["people"].items() if "home_office" in p and pid not in heads
    )
    number = next(k for k, v in spec["extensions"].items() if v == person_id)
    home_days = person["home_office"].split(",")
    office_day = next(d for d in WEEKDAYS if d not in home_days)
    for day, expected in ((home_days[0], "home"), (office_day, "desk")):
        decision = decide(
            plan, CallInfo(number, "+49 2331 5550000"), {}, _day_of_week(WEEKDAYS.index(day))
        )
        assert decision.rule == "direct dial, callee available"
        first = decision.steps[0].targets[0]
        assert (first.owner, first.device) == (person_id, expected), decision.trace
        assert decision.steps[1].targets[0].is_service


def test_busy_callee_goes_to_the_switchboard(plan: DialPlan) -> None:
    number = extension_number(1)
    decision = decide(plan, CallInfo(number, None), {"p1001": PresenceState.BUSY}, _day_of_week(1))
    assert decision.rule == "direct dial, callee on a call"
    assert all(t.owner == "zentrale" for t in decision.steps[0].targets)


def test_head_of_office_tries_the_front_office_first(plan: DialPlan) -> None:
    decision = decide(plan, CallInfo(extension_number(0), None), {}, _day_of_week(2))
    assert decision.rule is not None
    assert decision.rule.startswith("Amtsleitung")
    assert decision.steps[0].targets[0].owner == "p1001"
    assert decision.steps[1].targets[0].owner == "p1000"


def test_switchboard_closed_at_night(plan: DialPlan) -> None:
    night = datetime(2027, 6, 8, 22, 0, tzinfo=BERLIN)
    decision = decide(plan, CallInfo("+49 2331 207-0", None), {}, night)
    assert decision.rule == "switchboard closed"
    assert decision.steps == ()
