"""docs/dialplan.md: its first, complete example loads and explains itself as the text says."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from rules import CallInfo, DialPlanError, FinalKind, decide, load_plan_text
from tests.rules.helpers import BERLIN

DOC = Path(__file__).resolve().parents[2] / "docs" / "dialplan.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_first_example_loads_and_behaves_as_described() -> None:
    plan = load_plan_text(blocks("yaml")[0], "docs/dialplan.md")
    wednesday = decide(
        plan,
        CallInfo("+4923319876540", "+49 30 1234567"),
        {},
        dt.datetime(2027, 5, 26, 10, 0, tzinfo=BERLIN),
    )
    assert [(s.targets[0].ref, s.timeout) for s in wednesday.steps] == [
        ("jan.desk", 15),
        ("jan.mobile", 20),
        ("heimbuero.assistant", 60),
    ]
    assert wednesday.final.kind is FinalKind.VOICEMAIL
    holiday = decide(
        plan,
        CallInfo("+4923319876540", "+49 30 1234567"),
        {},
        dt.datetime(2027, 5, 27, 10, 0, tzinfo=BERLIN),
    )
    assert holiday.steps[0].parallel
    text = DOC.read_text(encoding="utf-8").split("prints exactly this reasoning:\n\n```\n")[1]
    explained = text.split("```")[0].strip().splitlines()
    assert list(holiday.trace) == explained


def test_the_error_example_shows_the_real_messages() -> None:
    text = DOC.read_text(encoding="utf-8").split("never a traceback. For this file\n\n```yaml\n")[1]
    broken, rest = text.split("```", 1)
    shown = rest.split("```\n", 1)[1].split("```")[0].strip().splitlines()
    try:
        load_plan_text(broken, "dialplans/bad.yaml")
    except DialPlanError as exc:
        real = [str(p) for p in exc.problems]
    else:  # pragma: no cover - the example must be broken
        raise AssertionError("the broken example loads")
    assert len(real) == len(shown)
    for line, expected in zip(real, shown, strict=True):
        assert line.startswith(expected.removesuffix("…)").removesuffix(", "))


def test_the_warning_example_shows_the_real_warnings() -> None:
    text = DOC.read_text(encoding="utf-8").split(
        "it warns only when it is sure.\nFor this plan\n\n```yaml\n"
    )[1]
    plan_text, rest = text.split("```", 1)
    shown = rest.split("```\n", 1)[1].split("```")[0].strip().splitlines()
    plan = load_plan_text(plan_text, "dialplans/dead.yaml")
    assert [str(w) for w in plan.warnings] == shown


def test_the_limits_in_the_yaml_notes_are_the_real_ones() -> None:
    from rules import yamlsource

    notes = DOC.read_text(encoding="utf-8").split("## YAML notes")[1]
    assert f"at most **{yamlsource.MAX_BYTES // 1024 // 1024} MB**" in notes
    assert f"**{yamlsource.EXPANSION} times" in notes
    assert f"{yamlsource.MIN_VALUES:,} values**" in notes
    assert f"never more than {yamlsource.MAX_VALUES:,})" in notes
