"""The dial-plan compiler's state and reporting, and the checks both of its halves use.

:class:`BuilderBase` collects every problem and warning of one document (each with its file,
line and column, and a "did you mean" where one helps), validates a value against a model,
and checks a number, a number prefix and a schedule. :class:`rules.compilerules.RuleBuilder`
compiles the rules on top of it, :class:`rules.compile.Builder` the plan's other sections and
the whole plan.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from rules import conditions as c
from rules.errors import Problem
from rules.model import (
    ScheduleSpec,
)
from rules.numbers import normalize_number, normalize_prefix
from rules.plan import (
    Person,
)
from rules.timeofweek import ScheduleSyntaxError, Week, compile_week, parse_days
from rules.yamlsource import Document, Path

T = TypeVar("T")


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


# German words for a device, and the names plans give such a device. Only a suggestion: device
# names are the author's own words (desk, mobile, platz1, anna) and nothing in the model says
# what kind of phone a device is, so reading "handy" as "mobile" would be a guess.
GERMAN_DEVICES = {
    "handy": ("mobile", "cell"),
    "mobil": ("mobile",),
    "buero": ("desk", "office"),
    "büro": ("desk", "office"),
    "schreibtisch": ("desk",),
    "zuhause": ("home",),
    "heim": ("home",),
    "homeoffice": ("home", "softphone"),
}


def unknown_device(owner: str, device: str, devices: Any, extra: tuple[str, ...] = ()) -> str:
    """``unknown device 'handy', did you mean 'mobile'? ('handy' is German for …)``."""
    close = suggest(device, [*devices, *extra])
    if close:
        return f"unknown device {device!r}{close}"
    german = next((d for d in GERMAN_DEVICES.get(device.lower(), ()) if d in devices), None)
    listed = ", ".join(devices)
    if german is not None:
        return (
            f"unknown device {device!r}, did you mean {german!r}? ({device!r} is German;"
            f" {owner}'s devices: {listed})"
        )
    return f"unknown device {device!r} ({owner}'s devices: {listed})"


def _message(error: Any) -> str:
    if error["type"] == "missing" and error["loc"]:
        return f"missing required key {error['loc'][-1]!r}"
    text = str(error["msg"]).removeprefix("Value error, ")
    text = _INSTANCE.sub(
        lambda m: "a mapping of days to times" if m[1] == "ScheduleSpec" else "a mapping", text
    )
    for python, yaml_word in _WORDS:
        text = text.replace(python, yaml_word)
    return text


# pydantic speaks Python; the author wrote YAML.
_INSTANCE = re.compile(r"a valid dictionary or instance of (\w+)")
_WORDS = (
    ("a valid tuple", "a list"),
    ("a valid list", "a list"),
    ("Tuple should", "The list should"),
    ("a valid dictionary", "a mapping (key: value)"),
    ("Dictionary should", "The mapping should"),
)


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class BuilderBase:
    """Compiles one document; ``problems`` collects everything wrong with it."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = list(doc.problems)
        self.warnings: list[Problem] = []
        self.region = "DE"
        self.people: dict[str, Person] = {}
        self.service: dict[str, Person] = {}
        self.schedules: dict[str, c.ScheduleIs] = {}
        self.schedule_names: set[str] = set()  # declared, even when broken
        self.lists: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        self.numbers: list[str] = []
        self.number_marks: dict[str, tuple[int, int]] = {}
        self.broken: set[str] = set()  # sections that failed validation: skip checks against them

    # --- reporting -------------------------------------------------------------------------

    def error(self, loc: Path, message: str) -> None:
        found, _ = self.doc.position(loc)
        where = _dotted(found)
        self.problems.append(self.doc.problem(loc, f"{where}: {message}" if where else message))

    def warn(self, loc: Path, message: str) -> None:
        found, _ = self.doc.position(loc)
        where = _dotted(found)
        self.warnings.append(self.doc.problem(loc, f"{where}: {message}" if where else message))

    def validated(self, adapter: TypeAdapter[T], value: Any, loc: Path) -> T | None:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            for error in exc.errors():
                self.error((*loc, *error["loc"]), _message(error))
            return None

    def number(self, raw: str, loc: Path) -> str | None:
        e164 = normalize_number(raw, self.region)
        if e164 is None:
            self.error(loc, f"{raw!r} is not a valid phone number (region {self.region})")
        return e164

    def prefix(self, raw: str, loc: Path) -> str | None:
        prefix = normalize_prefix(raw, self.region)
        if prefix is None:
            self.error(loc, f"{raw!r} is not a number prefix like '+49 171' or '0171'")
        return prefix

    def schedule(self, name: str, spec: ScheduleSpec, loc: Path) -> c.ScheduleIs | None:
        entries: list[tuple[str, str]] = []
        ok = True
        for key, texts in spec.days.items():
            try:
                parse_days(key)
            except ScheduleSyntaxError as exc:
                self.error((*loc, key), str(exc))
                ok = False
                continue
            for i, text in enumerate(texts):
                try:
                    compile_week([(key, text)])
                except ScheduleSyntaxError as exc:
                    self.error((*loc, key, i), str(exc))
                    ok = False
                else:
                    entries.append((key, text))
        if not ok:
            return None
        try:
            week = Week.of(compile_week(entries))
        except ScheduleSyntaxError as exc:
            self.error(loc, f"schedule {name!r}: {exc}")
            return None
        return c.ScheduleIs(name, week, spec.on_closed_days, week.describe())

    def unknown_person(self, name: str) -> str:
        return f"unknown person {name!r}{suggest(name, [*self.people, *self.service])}"
