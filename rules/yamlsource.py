"""YAML text -> plain Python data plus the position of every mapping key and sequence item.

PyYAML's composer keeps a mark (line, column) on every node; we walk the node tree ourselves so
that each value can be traced back to ``line:col`` when validation fails later, and so that
duplicate keys are reported (PyYAML's constructor silently keeps the last one).

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults where the difference bites a
dial-plan author: ``07:00`` stays a string (1.1 reads it as the sexagesimal integer 420),
``+4917012345`` and ``0171...`` stay strings (phone numbers, not integers or octal), and only
``true``/``false`` are booleans (``NO``, the ISO code of Norway, stays a string).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from rules.errors import Problem

Path = tuple[str | int, ...]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Composes nodes without PyYAML's implicit (YAML 1.1) typing of plain scalars.

    Resolving every scalar with PyYAML's regular expressions is three quarters of the time it
    takes to read the 1,400-extension municipal plan; :func:`_plain` does the few types a dial
    plan needs, the YAML 1.2 way.
    """

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        return _DEFAULT_TAGS[kind]


_Loader.yaml_implicit_resolvers = {}
_STR = "tag:yaml.org,2002:str"
_DEFAULT_TAGS = {
    yaml.ScalarNode: _STR,
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
    yaml.MappingNode: "tag:yaml.org,2002:map",
}
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Bounds on one file (issue 14). A dial plan is read off the call path, but a reload runs in the
# supervisor: a hostile or broken file must be refused in milliseconds, not after seconds of CPU
# and hundreds of MB. The 1,400-extension municipal plan (bench/gen_municipality.py) is 256 KB
# with about 10,500 values and no aliases.
MAX_BYTES = 2 * 1024 * 1024
"""Largest dial-plan file, in bytes of UTF-8 (checked before parsing)."""
EXPANSION = 10
"""Aliases may make a file expand to at most this many times the values written in it ..."""
MIN_VALUES = 10_000
"""... or to this many values, whichever is more (a small plan may reuse a block freely) ..."""
MAX_VALUES = 500_000
"""... and never to more than this many values ("billion laughs")."""
_ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")
_ALIAS = re.compile(r"\*[^\s,\[\]{}]*")


class _TooBig(Exception):
    pass


@dataclass
class Document:
    """The parsed file: ``data`` plus ``marks[path] = (line, col)``, both 1-based."""

    source: str
    data: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def position(self, loc: Path) -> tuple[Path, tuple[int, int]]:
        """The longest part of ``loc`` found in the file (pydantic adds parts), and its mark."""
        node = self.data
        found: list[str | int] = []
        best = self.marks.get((), (1, 1))
        for part in loc:
            if isinstance(part, str) and part.startswith("="):
                continue  # a union tag (rules.model), not a key of the file
            if (isinstance(node, dict) and isinstance(part, str) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            ):
                node = node[part]  # type: ignore[index]
            else:
                continue  # a name pydantic inserted; not in the file
            found.append(part)
            best = self.marks.get(tuple(found), best)
        return tuple(found), best

    def problem(self, loc: Path, message: str) -> Problem:
        _, (line, col) = self.position(loc)
        return Problem(self.source, line, col, message)


def _plain(text: str) -> Any:
    """An unquoted scalar: null, true/false, a decimal integer or float, a date, else text.

    ``07:00``, ``+4917012345``, ``0171...``, ``yes`` and ``NO`` stay text (YAML 1.1 would make
    them a sexagesimal number, integers, an octal number and booleans).
    """
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _DATE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:  # 2026-02-30: let validation say what is wrong
            return text
    return text


def _scalar(node: yaml.ScalarNode, constructor: yaml.constructor.SafeConstructor) -> Any:
    if node.tag == _STR:
        return node.value if node.style else _plain(node.value)
    # an explicit tag (!!int "5", !!binary ...): PyYAML's safe constructor knows the safe ones
    try:
        return constructor.construct_object(node)
    except ValueError:
        return node.value


def size_problem(source: str, size: int) -> Problem | None:
    """The problem of a file of ``size`` bytes, or None when it is small enough."""
    if size <= MAX_BYTES:
        return None
    return Problem(
        source,
        1,
        1,
        f"the file is {_megabytes(size)}; a dial plan may be at most {_megabytes(MAX_BYTES)}",
    )


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB".replace(".0 MB", " MB")


def _syntax_message(exc: yaml.MarkedYAMLError, text: str, line: int, col: int) -> str:
    """PyYAML's wording, or ours where PyYAML's does not tell an author what to do."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    problem = exc.problem or "invalid YAML"
    if here[col - 1 : col] == "\t" or (
        "tab" in problem and "\t" in here[: len(here) - len(here.lstrip())]
    ):
        return "tab characters are not allowed in YAML indentation; use spaces"
    if problem.startswith("found undefined alias"):
        found = _ALIAS.match(here, col - 1)
        word = found[0].rstrip(":") if found else "*"
        anchors = _ANCHOR.findall(text)
        close = difflib.get_close_matches(word[1:], anchors, n=1, cutoff=0.6)
        if close:
            return f"{word} refers to no &anchor, did you mean '*{close[0]}'?"
        return (
            f"{word} is read as an alias: in YAML an unquoted * starts a reference to an &anchor;"
            f" to write the text {word}, quote it: '{word}'"
        )
    return f"{problem} ({exc.context})" if exc.context else problem


def _written(root: yaml.Node) -> int:
    """How many value nodes the file writes (an alias's target counts once)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(value for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return len(seen)


def parse(text: str, source: str) -> Document:
    """Parse ``text``; syntax errors and duplicate keys end up in ``Document.problems``.

    Bounded: a text over :data:`MAX_BYTES` is refused unparsed, and the values that aliases
    expand to are bounded relative to what the file writes, so that any text is refused or
    parsed within a fraction of a second (the supervisor may run this in a worker thread).
    """
    doc = Document(source, None)
    too_big = size_problem(source, len(text) if len(text) > MAX_BYTES else 0)
    if too_big is None and len(text) > MAX_BYTES // 4:  # only then can UTF-8 be over the limit
        too_big = size_problem(source, len(text.encode("utf-8", "surrogatepass")))
    if too_big is not None:
        doc.problems.append(too_big)
        return doc
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = _syntax_message(exc, text, line, col)
        doc.problems.append(Problem(source, line, col, f"YAML syntax error: {what}"))
        return doc
    except yaml.YAMLError as exc:  # e.g. a reader error on a control character
        doc.problems.append(Problem(source, 1, 1, f"YAML syntax error: {exc}"))
        return doc
    if root is None:
        doc.problems.append(Problem(source, 1, 1, "the dial plan is empty"))
        return doc
    constructor = yaml.constructor.SafeConstructor()
    marks = doc.marks
    marks[()] = (root.start_mark.line + 1, root.start_mark.column + 1)
    open_nodes: set[int] = set()  # collections being built: an alias to one of them is a loop
    written = _written(root)
    limit = min(MAX_VALUES, max(MIN_VALUES, EXPANSION * written))
    budget = [limit]

    def build(node: yaml.Node, path: Path) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooBig
        if id(node) in open_nodes:
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            doc.problems.append(Problem(source, line, col, "YAML: an alias refers to itself"))
            return None
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            open_nodes.add(id(node))
            try:
                return build_collection(node, path)
            finally:
                open_nodes.discard(id(node))
        assert isinstance(node, yaml.ScalarNode)
        try:
            return _scalar(node, constructor)
        except yaml.YAMLError as exc:  # an unknown tag such as !!python/name
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            problem = getattr(exc, "problem", None) or str(exc)
            doc.problems.append(Problem(source, line, col, f"YAML: {problem}"))
            return None

    def build_collection(node: yaml.MappingNode | yaml.SequenceNode, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if not isinstance(key_node, yaml.ScalarNode):
                    doc.problems.append(
                        Problem(source, *key_mark, "a key must be a plain word or number")
                    )
                    continue
                key = key_node.value
                here = (*path, key)
                if key in result:
                    first = marks[here][0]
                    doc.problems.append(
                        Problem(source, *key_mark, f"duplicate key {key!r} (first at line {first})")
                    )
                    continue
                marks[here] = key_mark
                result[key] = build(value_node, here)
            return result
        items: list[Any] = []
        for index, item in enumerate(node.value):
            marks[(*path, index)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(build(item, (*path, index)))
        return items

    try:
        doc.data = build(root, ())
    except _TooBig:
        why = f"YAML: the aliases expand to more than {limit} values"
        if limit < MAX_VALUES:
            why += (
                f"; aliases may expand a plan to {EXPANSION} times the values written in it"
                f" ({written} here) or to {MIN_VALUES}"
            )
        doc.problems.append(Problem(source, 1, 1, why))
    except RecursionError:
        doc.problems.append(Problem(source, 1, 1, "YAML: the file is nested too deeply"))
    return doc
