"""The YAML reader: YAML 1.2 scalars where 1.1 would surprise, and positions of every key."""

from __future__ import annotations

import datetime as dt

import pytest

from rules import yamlsource
from rules.yamlsource import parse


def test_scalars_follow_yaml_1_2_where_it_matters() -> None:
    doc = parse(
        "a: 07:00\nb: +4917012345\nc: 0171\nd: 190:20:30.15\ne: yes\nf: NO\ng: true\n"
        "h: False\ni: ~\nj: 15\nk: 2.5\nl: 2027-05-26\nm: 0\n",
        "<y>",
    )
    assert doc.problems == []
    assert doc.data == {
        "a": "07:00",
        "b": "+4917012345",
        "c": "0171",
        "d": "190:20:30.15",
        "e": "yes",
        "f": "NO",
        "g": True,
        "h": False,
        "i": None,
        "j": 15,
        "k": 2.5,
        "l": dt.date(2027, 5, 26),
        "m": 0,
    }


def test_positions_of_keys_and_items() -> None:
    doc = parse("top:\n  list:\n    - x\n    - {k: v}\n", "<y>")
    assert doc.marks[("top",)] == (1, 1)
    assert doc.marks[("top", "list")] == (2, 3)
    assert doc.marks[("top", "list", 1)] == (4, 7)
    assert doc.marks[("top", "list", 1, "k")] == (4, 8)
    assert doc.position(("top", "=tag", "list", 9, "nope")) == (("top", "list"), (2, 3))
    assert doc.problem(("top", "list", 0), "m").line == 3


def test_an_alias_that_refers_to_itself_is_a_problem() -> None:
    doc = parse("tenant: &a [*a]\n", "<y>")
    assert [str(p) for p in doc.problems] == ["<y>:1:9: YAML: an alias refers to itself"]


def test_aliases_may_be_reused() -> None:
    doc = parse("a: &x {k: 1}\nb: *x\nc: *x\n", "<y>")
    assert doc.problems == []
    assert doc.data == {"a": {"k": 1}, "b": {"k": 1}, "c": {"k": 1}}


def test_an_alias_bomb_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_VALUES", 1000)
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdef":
        previous = chr(ord(level) - 1)
        text += f"{level}: &{level} [{', '.join([f'*{previous}'] * 10)}]\n"
    doc = parse(text, "<y>")
    assert [str(p) for p in doc.problems] == [
        "<y>:1:1: YAML: the aliases expand to more than 1000 values"
    ]


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    doc = parse("a: " + "[" * 900 + "]" * 900 + "\n", "<y>")
    assert [str(p) for p in doc.problems] == ["<y>:1:1: YAML: the file is nested too deeply"]


def test_explicit_tags_and_quoted_scalars() -> None:
    doc = parse('a: !!int "5"\nc: "15"\nd: !!timestamp 2026-02-30\ne: 1e3\nf: -2\n', "<y>")
    assert doc.problems == []
    assert doc.data == {"a": 5, "c": "15", "d": "2026-02-30", "e": "1e3", "f": -2}
    # Known limit: "!!str 5" cannot be told from a plain 5 once composed; quote it instead.
