"""The control channel between the supervisor and a worker process: one frozen dataclass per op.

Newline-delimited JSON objects over a Unix stream socket (a ``socketpair`` whose worker end
is passed as ``--control-fd``). Every object has an ``op``; :func:`encode` and
:func:`decode` are the only places that know the JSON shape, both ends ``match`` on the
classes (with :func:`typing.assert_never` for the ops they do not expect).

supervisor -> worker (:data:`ToWorker`)
    :class:`Presence`  ``{"op": "presence", "tenant": T, "states": {person: state}}``
                       replace one tenant's presence snapshot
    :class:`Forwarding` ``{"op": "forwarding", "tenant": T, "targets": {person: number}}``
                       replace one tenant's call forwardings (issue 18, ``*21*…#``)
    :class:`Reload`    ``{"op": "reload", "paths": [...]}`` load the dial plans again (calls
                       in flight keep theirs); without ``paths`` the worker's own
    :class:`Drain`     ``{"op": "drain"}`` take no new calls (503), finish those in flight
    :class:`Stop`      ``{"op": "stop", "grace": seconds}`` drain, hang up after ``grace``,
                       exit 0; without ``grace`` the worker's own
    :class:`TransferCall` ``{"op": "transfer", "call_id": id, "target": text, "by": name|null}``
                       put the bridged call through to ``target`` (a plan device such as
                       ``jan.mobile``, a person, an extension or a number): the console's
                       "put through" (issue 18), the same blind transfer a REFER starts
    :class:`Originate` ``{"op": "originate", "request": id, "tenant": T, "ring": ref,
                       "number": N, "business": code|null, "by": name|null}`` click to call
                       (issue 17): ring the device ``ring`` of ``tenant``'s plan first, then
                       call ``number`` as the business; answered by :class:`OriginateAnswer`

worker -> supervisor (:data:`FromWorker`)
    :class:`Ready`         ``{"op": "ready", "worker": name, "sip": "host:port", "capacity": legs}``
    :class:`CallReport`    ``{"op": "call", "phase": "started"|"answered"|"ended",
                           "record": CallRecord.to_dict()}``
    :class:`Legs`          ``{"op": "legs", "in_use": n, "capacity": legs}`` after every change
    :class:`PresenceSet`   ``{"op": "presence_set", "tenant": T, "person": P, "state": S}``
                           from a feature code
    :class:`ForwardSet`    ``{"op": "forward_set", "tenant": T, "person": P, "number": N|null}``
                           from ``*21*<number>#`` (null: ``#21#`` cleared it)
    :class:`ReloadFailed`  ``{"op": "reload_failed", "problems": [str, ...]}``
    :class:`Reloaded`      ``{"op": "reloaded", "tenants": n}``
    :class:`VoicemailFiled` ``{"op": "voicemail", "kind", "person", "tenant", "call_id",
                           "caller", "called", "path", "seconds", "started_wall"}``
    :class:`LimitHit`      ``{"op": "limit_hit", "tenant": T, "person": P, "reason": text,
                           "call_id": id, "call_class": c}`` an outbound call stopped by a
                           per-person limit (the supervisor audits it, issue 17)
    :class:`OriginateAnswer` ``{"op": "originate_answer", "request": id, "status": 202|403|404|503,
                           "reason": text, "call_id": id|null}`` what became of an
                           :class:`Originate` (202: the person's phone rings)

The console's and click to call's ops (:class:`TransferCall`, :class:`Originate`,
:class:`LimitHit`, :class:`OriginateAnswer`) are defined in switch/control/callops.py, the
queue ops (issue 19, the ``queue_*`` ops; the queue lives in the supervisor,
switch/supervisor/queues.py) in switch/control/queueops.py, the field readers in
switch/control/fields.py; all are in the same unions and the same codec, importable from here.

Messages are small; a line longer than :data:`MAX_LINE` is a protocol error
(:class:`~switch.errors.ControlProtocolError`, as is anything else that is not one of these).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from switch.call.calllog import CallPhase, CallRecord
from switch.control import callops, queueops
from switch.control.callops import *  # noqa: F403  (re-exported: every op is importable from here)
from switch.control.callops import CALL_OPS, LimitHit, Originate, OriginateAnswer, TransferCall
from switch.control.fields import (
    READERS,
    from_fields,
    integer,
    opt_float,
    opt_text,
    slot_fields,
    text,
)
from switch.control.queueops import *  # noqa: F403  (re-exported, as the call ops)
from switch.control.queueops import QUEUE_OPS, QUEUE_READERS, QueueFromWorker, QueueToWorker
from switch.errors import ControlProtocolError

MAX_LINE: Final = 1 << 20


# ----------------------------------------------------------------------- supervisor -> worker


@dataclass(frozen=True, slots=True)
class Presence:
    tenant: str
    states: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Forwarding:
    tenant: str
    targets: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reload:
    paths: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Drain:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    grace: float | None = None


# ----------------------------------------------------------------------- worker -> supervisor


@dataclass(frozen=True, slots=True)
class Ready:
    worker: str
    sip: str
    capacity: int


@dataclass(frozen=True, slots=True)
class CallReport:
    """A call record at one phase; the worker hands over a snapshot, the writer encodes it."""

    phase: CallPhase
    record: CallRecord


@dataclass(frozen=True, slots=True)
class Legs:
    in_use: int
    capacity: int


@dataclass(frozen=True, slots=True)
class PresenceSet:
    tenant: str
    person: str
    state: str


@dataclass(frozen=True, slots=True)
class ForwardSet:
    tenant: str
    person: str
    number: str | None


@dataclass(frozen=True, slots=True)
class ReloadFailed:
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reloaded:
    tenants: int


@dataclass(frozen=True, slots=True)
class VoicemailFiled:
    """A voicemail or dictation recording is complete (switch/supervisor/voicemail.py files it)."""

    kind: str
    person: str | None
    tenant: str
    call_id: str
    caller: str | None
    called: str
    path: str
    seconds: float
    started_wall: float
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a newer worker added

    def fields(self) -> dict[str, Any]:
        """The message as the voicemail box reads it (``op`` included)."""
        return _to_json(self)


ToWorker = Presence | Forwarding | Reload | Drain | Stop | TransferCall | Originate | QueueToWorker
FromWorker = (
    Ready
    | CallReport
    | Legs
    | PresenceSet
    | ForwardSet
    | ReloadFailed
    | Reloaded
    | VoicemailFiled
    | LimitHit
    | OriginateAnswer
    | QueueFromWorker
)
Message = ToWorker | FromWorker

OPS: Final[Mapping[str, type[Message]]] = {
    "presence": Presence,
    "forwarding": Forwarding,
    "reload": Reload,
    "drain": Drain,
    "stop": Stop,
    "ready": Ready,
    "call": CallReport,
    "legs": Legs,
    "presence_set": PresenceSet,
    "forward_set": ForwardSet,
    "reload_failed": ReloadFailed,
    "reloaded": Reloaded,
    "voicemail": VoicemailFiled,
    **CALL_OPS,
    **QUEUE_OPS,
}
_OP_OF: Final = {cls: op for op, cls in OPS.items()}


def _to_json(message: Message) -> dict[str, Any]:
    match message:
        case Presence(tenant, states):
            return {"op": "presence", "tenant": tenant, "states": dict(states)}
        case Forwarding(tenant, targets):
            return {"op": "forwarding", "tenant": tenant, "targets": dict(targets)}
        case Reload(paths):
            return {"op": "reload"} if paths is None else {"op": "reload", "paths": list(paths)}
        case Stop(grace):
            return {"op": "stop"} if grace is None else {"op": "stop", "grace": grace}
        case CallReport(phase, record):
            return {"op": "call", "phase": str(phase), "record": record.to_dict()}
        case VoicemailFiled():
            return {
                "op": "voicemail",
                **message.extra,
                "kind": message.kind,
                "person": message.person,
                "tenant": message.tenant,
                "call_id": message.call_id,
                "caller": message.caller,
                "called": message.called,
                "path": message.path,
                "seconds": message.seconds,
                "started_wall": message.started_wall,
            }
        case _ if type(message) in _OP_OF:  # every other op: its JSON is its fields
            return {"op": _OP_OF[type(message)], **slot_fields(message)}
    raise ControlProtocolError(f"not a control message: {message!r}")


def encode(message: Message) -> bytes:
    """One JSON line (with its newline)."""
    data = _to_json(message)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


_VOICEMAIL_KEYS: Final = frozenset(
    {"op", "kind", "person", "tenant", "call_id", "caller", "called", "path", "seconds"}
    | {"started_wall"}
)


_PLAIN_OPS: Final = ("reload", "drain", "stop", "presence_set", "forward_set", "reload_failed")
_BY_FIELDS: Final[Mapping[str, type[Message]]] = {**{op: OPS[op] for op in _PLAIN_OPS}, **CALL_OPS}
"""The ops that :func:`~switch.control.fields.from_fields` decodes with its READERS (the
queue ops: with QUEUE_READERS)."""


def _from_json(data: Mapping[str, Any]) -> Message:
    op = data.get("op")
    try:
        match op:
            case "presence":
                states = data.get("states", {})
                if not isinstance(states, dict):
                    raise ControlProtocolError("control message 'presence': 'states' is no map")
                return Presence(text(data, "tenant"), {str(k): str(v) for k, v in states.items()})
            case "forwarding":
                targets = data.get("targets", {})
                if not isinstance(targets, dict):
                    raise ControlProtocolError("control message 'forwarding': 'targets' is no map")
                return Forwarding(
                    text(data, "tenant"), {str(k): str(v) for k, v in targets.items()}
                )
            case "ready":
                return Ready(text(data, "worker"), text(data, "sip"), integer(data, "capacity", 0))
            case "call":
                record = data.get("record")
                if not isinstance(record, dict):
                    raise ControlProtocolError("control message 'call': 'record' is no map")
                return CallReport(CallPhase(text(data, "phase")), CallRecord.from_dict(record))
            case "legs":
                return Legs(integer(data, "in_use", 0), integer(data, "capacity", 0))
            case "reloaded":
                return Reloaded(integer(data, "tenants", 0))
            case "voicemail":
                return VoicemailFiled(
                    kind=str(data.get("kind", "voicemail")),
                    person=opt_text(data, "person"),
                    tenant=text(data, "tenant"),
                    call_id=text(data, "call_id"),
                    caller=opt_text(data, "caller"),
                    called=str(data.get("called", "")),
                    path=text(data, "path"),
                    seconds=opt_float(data, "seconds") or 0.0,
                    started_wall=opt_float(data, "started_wall") or 0.0,
                    extra={k: v for k, v in data.items() if k not in _VOICEMAIL_KEYS},
                )
            case str() if op in _BY_FIELDS:
                message: Message = from_fields(_BY_FIELDS[op], data, READERS)
                return message
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ControlProtocolError):
            raise
        raise ControlProtocolError(f"control message {op!r}: {exc}") from exc
    if isinstance(op, str) and op in QUEUE_OPS:
        queued: Message = from_fields(QUEUE_OPS[op], data, QUEUE_READERS)
        return queued
    raise ControlProtocolError(f"control message with unknown op {op!r}")


def decode(line: bytes) -> Message:
    """The message of one JSON line; :class:`ControlProtocolError` for anything else."""
    if len(line) > MAX_LINE:
        raise ControlProtocolError(f"control message of {len(line)} bytes is too long")
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ControlProtocolError(f"control message is not JSON: {line[:80]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("op"), str):
        raise ControlProtocolError(f"control message without 'op': {line[:80]!r}")
    return _from_json(data)


def op_of(message: Message) -> str:
    """The wire name of a message's op (for logs)."""
    return _OP_OF[type(message)]


__all__ = [
    "MAX_LINE",
    "OPS",
    "CallReport",
    "Drain",
    "ForwardSet",
    "Forwarding",
    "FromWorker",
    "Legs",
    "Message",
    "Presence",
    "PresenceSet",
    "Ready",
    "Reload",
    "ReloadFailed",
    "Reloaded",
    "Stop",
    "ToWorker",
    "VoicemailFiled",
    "decode",
    "encode",
    "op_of",
]
__all__ += callops.__all__
__all__ += queueops.__all__
