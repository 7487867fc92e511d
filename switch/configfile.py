"""Operator files (settings, edge settings, users, credentials) read the way dial plans are.

One loader for every YAML file an operator writes besides the dial plans: it parses with
:mod:`rules.yamlsource` (positions of every key, duplicate keys found, YAML 1.2 scalars),
validates with the file's pydantic model, and turns each validation error into
``file:line:col: key: message, did you mean …`` (:class:`switch.errors.ConfigError`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rules.yamlsource import Document, parse
from switch.errors import ConfigError, ConfigProblem

M = TypeVar("M", bound=BaseModel)


def read_document(path: Path, error: type[ConfigError]) -> Document:
    """The parsed file; ``error`` (a ConfigError subclass) when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = text_line_of_offset(path.read_bytes(), exc.start)
        raise error(
            [ConfigProblem(str(path), line, 1, "", "not UTF-8: save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise error([ConfigProblem(str(path), 0, 0, "", f"cannot read: {exc.strerror}")]) from None
    doc = parse(text, str(path))
    if doc.problems:
        raise error(
            [ConfigProblem(p.source, p.line, p.column, "", p.message) for p in doc.problems]
        )
    return doc


def text_line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _key_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _message(model: type[BaseModel], err: Any) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden" and loc:
        owner: Any = model
        for part in loc[:-1]:  # walk into nested models to name the keys that exist there
            field = getattr(owner, "model_fields", {}).get(part)
            annotation = getattr(field, "annotation", None)
            owner = annotation if isinstance(annotation, type) else None
        names = sorted(f.alias or n for n, f in getattr(owner, "model_fields", {}).items())
        close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
        hint = f", did you mean {close[0]!r}?" if close else ""
        return f"unknown key{hint}"
    return str(err["msg"]).removeprefix("Value error, ")


def validation_problems(
    exc: ValidationError, model: type[BaseModel], doc: Document | None, label: str
) -> list[ConfigProblem]:
    """One :class:`ConfigProblem` per pydantic error, placed at the key's position in ``doc``."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = column = 0
        if doc is not None:
            _, (line, column) = doc.position(loc)
        problems.append(ConfigProblem(label, line, column, _key_of(loc), _message(model, err)))
    return problems


def validate(
    model: type[M],
    data: Mapping[str, Any],
    error: type[ConfigError],
    *,
    doc: Document | None = None,
    label: str = "",
) -> M:
    """``model`` validated from ``data``; every problem raised at once as ``error``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(
            validation_problems(exc, model, doc, label or (doc.source if doc else ""))
        ) from None


def load(
    path: Path,
    model: type[M],
    error: type[ConfigError],
    overrides: Mapping[str, Any] | None = None,
) -> M:
    """Read ``path`` (YAML), apply ``overrides`` (None values skipped) and validate it."""
    doc = read_document(path, error)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise error([ConfigProblem(str(path), 1, 1, "", "must be a mapping of keys")])
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return validate(model, data, error, doc=doc)
