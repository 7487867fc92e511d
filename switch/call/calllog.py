"""The record of one call as the worker reports it: timestamps, legs, outcome.

A worker builds one :class:`CallRecord` per incoming call and sends it to the
supervisor over the control channel (:mod:`switch.control.messages`) three times: when the
call starts (``phase="started"``, so the dashboard shows it and a record exists if
the worker dies), when it is answered (``"answered"``), and when it ends
(``"ended"``). The supervisor feeds these to the call-record writer and the metrics.

Timestamps ending in ``_ns`` are ``time.monotonic_ns()`` readings of the worker
(CLOCK_MONOTONIC is system-wide on Linux, so they compare across processes);
``started_wall`` is the wall clock (Unix seconds, UTC) of the INVITE's arrival, for
people and reports. Latency figures are differences of monotonic stamps only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class CallPhase(StrEnum):
    """When a worker reports a record (the ``phase`` of its control message)."""

    STARTED = "started"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(slots=True)
class MediaStats:
    """Per-leg media figures from RTCP (``Call.getStreamStat``), at the end of the leg."""

    codec: str | None = None
    rx_packets: int = 0
    tx_packets: int = 0
    rx_loss: int = 0  # packets lost towards us
    jitter_ms: float | None = None  # receive jitter, mean
    rtt_ms: float | None = None  # RTCP round-trip time, mean
    mos: float | None = None  # E-model estimate (switch.call.quality)


@dataclass(slots=True)
class LegRecord:
    leg: int
    target: str  # ref from the plan, e.g. "jan.desk"
    uri: str
    owner: str  # person or service id
    is_service: bool
    step: int  # index of the dial-plan step (0-based)
    invite_out_ns: int | None = None
    first_18x_in_ns: int | None = None
    answered_ns: int | None = None
    ended_ns: int | None = None
    status: int | None = None  # final SIP status of the leg (200, 486, 487, ...)
    reason: str | None = None
    media: MediaStats | None = None


@dataclass(slots=True)
class CallRecord:
    call_id: str  # SIP Call-ID of the incoming leg
    tenant: str | None  # None when the called number belongs to no plan
    called: str
    caller: (
        str | None
    )  # E.164 or URI; None when anonymous. Masked in logs, never in metrics labels.
    rule: str | None
    worker: str  # worker name ("w1")
    started_wall: float
    invite_in_ns: int
    decision_ns: int | None = None
    first_18x_in_ns: int | None = None  # first provisional from any target
    first_18x_relayed_ns: int | None = None  # when we sent 180/183 to the caller
    answer_in_ns: int | None = None  # 200 OK from the winning target
    answer_relayed_ns: int | None = None  # our 200 OK to the caller
    ended_ns: int | None = None
    outcome: str | None = None  # switch.call.events.Outcome value
    answered_by: str | None = None  # target ref of the bridged leg
    answered_by_service: bool = False
    hung_up_by: str | None = None  # "caller" | "callee" | "switch"
    sip_status: int | None = None  # final status sent to the caller
    final_action: str | None = None  # "reject" / "voicemail" / "announcement" when it ran
    media: MediaStats | None = None  # caller-leg media
    legs: list[LegRecord] = field(default_factory=list)
    # Issue 17: outbound calls (from a business's phone, billed to ``tenant``) and transfers.
    direction: str = "inbound"  # "inbound" | "outbound"
    presented: str | None = None  # outbound: the number the callee saw
    transferred_by: str | None = None  # target ref of the transferor
    transferred_to: str | None = None  # what it asked for ("jan.mobile", "+49171...")
    transfer_outcome: str | None = None  # answered | recalled | fallback | failed
    reason: str | None = None  # why the switch refused the call itself (issue 15)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        data = dict(data)
        legs = [
            LegRecord(**{**leg, "media": MediaStats(**leg["media"]) if leg.get("media") else None})
            for leg in data.pop("legs", [])
        ]
        media = data.pop("media", None)
        return cls(**data, legs=legs, media=MediaStats(**media) if media else None)
