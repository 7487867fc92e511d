"""The queue ops of the control channel (issue 19): frozen dataclasses and their field types.

switch/control/messages.py puts them into :data:`~switch.control.messages.ToWorker`,
:data:`~switch.control.messages.FromWorker` and its one ``encode``/``decode``; they live here
so that messages.py stays one screenful per op family. Every field is a plain JSON value,
so one generic codec serves all of them: :func:`~switch.control.fields.slot_fields` encodes,
:func:`~switch.control.fields.from_fields` with :data:`QUEUE_READERS` (strict) decodes.

supervisor -> worker
    :class:`QueueOffer`   ``{"op": "queue_offer", "call_id", "member", "uri", "ref", "timeout"}``
                          ring this member for the waiting caller
    :class:`QueueUpdate`  ``{"op": "queue_update", "call_id", "position", "wait", "digit"}``
    :class:`QueueGiveUp`  ``{"op": "queue_give_up", "call_id", "reason"}`` the queue lets go
    :class:`QueueCallBack` ``{"op": "queue_call_back", "queue", "ref", "tenant", "number",
                          "member", "uri", "timeout"}`` place a callback: ring the member,
                          then the caller at ``number`` through the tenant's trunk

worker -> supervisor
    :class:`QueueJoin`     ``{"op": "queue_join", "queue", "call_id", "tenant"}``
    :class:`QueueResult`   ``{"op": "queue_result", "queue", "call_id", "member", "answered"}``
                           (``call_id`` is the callback's ``ref`` for a callback's member)
    :class:`QueueCallback` ``{"op": "queue_callback", "queue", "call_id", "tenant", "number"}``
    :class:`QueueMember`   ``{"op": "queue_member", "user", "action"}`` a member's feature code
    :class:`QueueCallbackDone` ``{"op": "queue_callback_done", "queue", "ref", "member",
                           "reached"}`` a placed callback is over (the caller was reached or not)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from switch.control.fields import Reader
from switch.errors import ControlProtocolError


@dataclass(frozen=True, slots=True)
class QueueOffer:
    call_id: str
    member: str
    uri: str
    ref: str
    timeout: float


@dataclass(frozen=True, slots=True)
class QueueUpdate:
    call_id: str
    position: int
    wait: float
    digit: str | None = None


@dataclass(frozen=True, slots=True)
class QueueGiveUp:
    call_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class QueueCallBack:
    queue: str
    ref: str  # the callback request's id ("cb-<n>")
    tenant: str
    number: str  # the caller's number, called through the tenant's trunk
    member: str
    uri: str
    timeout: float


@dataclass(frozen=True, slots=True)
class QueueJoin:
    queue: str
    call_id: str
    tenant: str


@dataclass(frozen=True, slots=True)
class QueueResult:
    queue: str
    call_id: str
    member: str
    answered: bool


@dataclass(frozen=True, slots=True)
class QueueCallback:
    queue: str
    call_id: str
    tenant: str
    number: str


@dataclass(frozen=True, slots=True)
class QueueMember:
    user: str
    action: str  # login, logout, pause, unpause


@dataclass(frozen=True, slots=True)
class QueueCallbackDone:
    queue: str
    ref: str
    member: str
    reached: bool


QueueToWorker = QueueOffer | QueueUpdate | QueueGiveUp | QueueCallBack
QueueFromWorker = QueueJoin | QueueResult | QueueCallback | QueueMember | QueueCallbackDone
QueueMessage = QueueToWorker | QueueFromWorker

QUEUE_OPS: Final[Mapping[str, type[QueueMessage]]] = {
    "queue_offer": QueueOffer,
    "queue_update": QueueUpdate,
    "queue_give_up": QueueGiveUp,
    "queue_call_back": QueueCallBack,
    "queue_join": QueueJoin,
    "queue_result": QueueResult,
    "queue_callback": QueueCallback,
    "queue_member": QueueMember,
    "queue_callback_done": QueueCallbackDone,
}


def _strict(kind: type) -> Reader:
    """A reader that takes only a JSON value of ``kind`` (a whole number for a float)."""

    def read(data: Mapping[str, Any], key: str) -> Any:
        value = data.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            op = data.get("op")
            raise ControlProtocolError(f"control message {op!r}: {key!r} is not {kind.__name__}")
        return value

    return read


def _optional(read: Reader) -> Reader:
    return lambda data, key: None if data.get(key) is None else read(data, key)


QUEUE_READERS: Final[Mapping[str, Reader]] = {
    "str": _strict(str),
    "str | None": _optional(_strict(str)),
    "int": _strict(int),
    "float": _strict(float),
    "bool": _strict(bool),
}
"""The queue ops read strictly: a field of the wrong JSON type is a protocol error."""


__all__ = [
    "QUEUE_OPS",
    "QUEUE_READERS",
    "QueueCallBack",
    "QueueCallback",
    "QueueCallbackDone",
    "QueueFromWorker",
    "QueueGiveUp",
    "QueueJoin",
    "QueueMember",
    "QueueMessage",
    "QueueOffer",
    "QueueResult",
    "QueueToWorker",
    "QueueUpdate",
]
