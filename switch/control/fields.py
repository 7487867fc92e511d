"""Typed readers of a control message's JSON fields, shared by the op families' codecs.

switch/control/messages.py and switch/control/callops.py decode with these; each raises
:class:`~switch.errors.ControlProtocolError` naming the op and the key when a field has
the wrong type. For the ops whose JSON is their dataclass fields, :func:`slot_fields` is the
one encoder and :func:`from_fields` the one decoder: it reads each field with the reader that
a table gives for the field's annotation (:data:`READERS`, or a family's own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from switch.errors import ControlProtocolError

Reader = Callable[[Mapping[str, Any], str], Any]
"""Reads the field ``key`` of a message's JSON object (ControlProtocolError when wrong)."""


def slot_fields(message: Any) -> dict[str, Any]:
    """The JSON fields of a message whose wire form is its dataclass fields (without ``op``)."""
    return {name: getattr(message, name) for name in message.__slots__}


def from_fields(cls: type[Any], data: Mapping[str, Any], readers: Mapping[str, Reader]) -> Any:
    """``cls`` from the JSON object of its op: every dataclass field of ``cls`` read by the
    reader that ``readers`` names for its annotation (as written: ``"str | None"``)."""
    return cls(**{f.name: readers[str(f.type)](data, f.name) for f in dataclasses.fields(cls)})


def text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ControlProtocolError(f"control message {data.get('op')!r}: {key!r} is not text")
    return value


def opt_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def integer(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlProtocolError(f"control message {data.get('op')!r}: {key!r} is no number")
    return int(value)


def opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlProtocolError(f"control message {data.get('op')!r}: {key!r} is no number")
    return float(value)


def texts(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ControlProtocolError(f"control message {data.get('op')!r}: {key!r} is no list")
    return tuple(str(item) for item in value)


def opt_texts(data: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    return texts(data, key) if key in data else None


READERS: Final[Mapping[str, Reader]] = {
    "str": text,
    "str | None": opt_text,
    "int": integer,
    "float | None": opt_float,
    "tuple[str, ...]": texts,
    "tuple[str, ...] | None": opt_texts,
}
"""The readers by annotation for the ops of switch/control/messages.py and callops.py."""


__all__ = [
    "READERS",
    "Reader",
    "from_fields",
    "integer",
    "opt_float",
    "opt_text",
    "opt_texts",
    "slot_fields",
    "text",
    "texts",
]
