"""The control channel between the supervisor and a worker process.

Newline-delimited JSON objects over a Unix stream socket (a ``socketpair`` whose
worker end is passed as ``--control-fd``). Every message has an ``op``.

supervisor -> worker
    ``{"op": "presence", "tenant": T, "states": {person: state}}``  replace one tenant's snapshot
    ``{"op": "reload", "paths": [...]}``    load the dial plans again (calls in flight keep theirs)
    ``{"op": "drain"}``                     take no new calls (503), finish those in flight
    ``{"op": "stop", "grace": seconds}``    drain, then hang up after ``grace`` and exit 0

worker -> supervisor
    ``{"op": "ready", "worker": name, "sip": "host:port", "capacity": legs}``
    ``{"op": "call", "phase": "started"|"answered"|"ended", "record": CallRecord.to_dict()}``
    ``{"op": "legs", "in_use": n, "capacity": legs}``  after every change
    ``{"op": "presence_set", "tenant": T, "person": P, "state": S}``  from a feature code
    ``{"op": "reload_failed", "problems": [str, ...]}`` / ``{"op": "reloaded", "tenants": n}``

Messages are small; a line longer than :data:`MAX_LINE` is a protocol error.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 1 << 20


class ControlProtocolError(ValueError):
    """A control message that is not one JSON object with an ``op``."""


def encode(message: dict[str, Any]) -> bytes:
    if "op" not in message:
        raise ControlProtocolError(f"control message without 'op': {message!r}")
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ControlProtocolError(f"control message of {len(line)} bytes is too long")
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ControlProtocolError(f"control message is not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ControlProtocolError(f"control message without 'op': {line[:80]!r}")
    return message
