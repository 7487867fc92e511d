"""Typed readers of a control message's JSON fields, shared by the op families' codecs.

switch/control/messages.py and switch/control/callops.py decode with these; each raises
:class:`~switch.errors.ControlProtocolError` naming the op and the key when a field has
the wrong type. :func:`slot_fields` is the encoder for ops whose JSON is their fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switch.errors import ControlProtocolError


def slot_fields(message: Any) -> dict[str, Any]:
    """The JSON fields of a message whose wire form is its dataclass fields (without ``op``)."""
    return {name: getattr(message, name) for name in message.__slots__}


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


__all__ = [
    "integer",
    "opt_float",
    "opt_text",
    "slot_fields",
    "text",
    "texts",
]
