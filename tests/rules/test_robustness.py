"""Whatever a file holds, loading it either works or raises DialPlanError: never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import DialPlanError, Problem, load_plan_text

EXAMPLE = (Path(__file__).resolve().parents[2] / "dialplans" / "tischlerei-mueller.yaml").read_text(
    encoding="utf-8"
)
KEYS = [
    "tenant", "name", "numbers", "people", "service", "schedules", "rules", "when", "then",
    "ring", "timeout", "caller", "presence", "devices", "mon-fri", "current", "home_office",
    "extensions", "person", "holidays", "country", "subdivision", "reject", "status", "not",
    "all", "any", "schedule", "vacations", "from", "to", "closed_days", "caller_lists",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["jan", "jan.desk", "+49 2331 987654-0", "07:00-12:00", "mon", "reject",
                     "voicemail", "available", "15s", "2027-02-30", "DE", "NW", "*30", ""]),
    st.text(max_size=8),
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=15,
)


def load_or_problems(text: str) -> None:
    problems: tuple[Problem, ...] = ()
    try:
        load_plan_text(text, "<fuzz>")
    except DialPlanError as exc:
        problems = exc.problems
        assert problems, "a DialPlanError names its problems"
    assert all(p.line >= 1 and p.column >= 1 and p.message for p in problems)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(KEYS), DATA, max_size=8))
def test_random_structures(data: dict[str, Any]) -> None:
    load_or_problems(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, len(EXAMPLE) - 1), length=st.integers(1, 40), junk=st.text(max_size=5))
def test_the_example_with_a_piece_cut_out_or_replaced(start: int, length: int, junk: str) -> None:
    load_or_problems(EXAMPLE[:start] + junk + EXAMPLE[start + length :])
