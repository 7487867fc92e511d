"""The console's and click to call's ops of the control channel (issues 17, 18).

switch/control/messages.py puts them into :data:`~switch.control.messages.ToWorker`,
:data:`~switch.control.messages.FromWorker` and its one ``encode``/``decode``, as it does
with the queue ops of switch/control/queueops.py. Their wire form is their fields in order
(:func:`~switch.control.fields.slot_fields` encodes, :func:`~switch.control.fields.from_fields`
with :data:`~switch.control.fields.READERS` decodes).

supervisor -> worker
    :class:`TransferCall` ``{"op": "transfer", "call_id": id, "target": text, "by": name|null}``
    :class:`Originate`    ``{"op": "originate", "request": id, "tenant": T, "ring": ref,
                          "number": N, "business": code|null, "by": name|null}``

worker -> supervisor
    :class:`LimitHit`        ``{"op": "limit_hit", "tenant", "person", "reason", "call_id",
                             "call_class"}``
    :class:`OriginateAnswer` ``{"op": "originate_answer", "request", "status", "reason",
                             "call_id"}``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class TransferCall:
    """The console puts a bridged call through (switch/worker/loop.py feeds the flow)."""

    call_id: str
    target: str
    by: str | None = None  # who asked (the console's user), for the worker's log


@dataclass(frozen=True, slots=True)
class Originate:
    """Click to call (issue 17, switch/worker/originate.py): ring ``ring`` (a plan name such
    as ``heimbuero.anna`` or ``jan.desk``) of ``tenant``, then call ``number`` as the
    business (``business``: a business code, as ``*8<code>#`` dials it)."""

    request: str  # the supervisor's id of the request; the worker's answer names it
    tenant: str
    ring: str
    number: str
    business: str | None = None
    by: str | None = None  # who asked (the API's user), for the worker's log


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A per-person outbound limit stopped a call (switch/call/outbound.py OutboundLimits)."""

    tenant: str
    person: str
    reason: str  # "Limit reached: 30 calls per hour"
    call_id: str
    call_class: str | None = None


@dataclass(frozen=True, slots=True)
class OriginateAnswer:
    """The worker's answer to an :class:`Originate`: 202 (ringing the person, ``call_id``
    is the record's), 403 (not permitted: ``reason``), 404 (unknown device or business),
    503 (no legs)."""

    request: str
    status: int
    reason: str
    call_id: str | None = None


CallToWorker = TransferCall | Originate
CallFromWorker = LimitHit | OriginateAnswer
CallOpMessage = CallToWorker | CallFromWorker

CALL_OPS: Final[Mapping[str, type[CallOpMessage]]] = {
    "transfer": TransferCall,
    "originate": Originate,
    "limit_hit": LimitHit,
    "originate_answer": OriginateAnswer,
}


__all__ = [
    "CALL_OPS",
    "CallFromWorker",
    "CallOpMessage",
    "CallToWorker",
    "LimitHit",
    "Originate",
    "OriginateAnswer",
    "TransferCall",
]
