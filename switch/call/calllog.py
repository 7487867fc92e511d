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


class MediaSource(StrEnum):
    """What a leg's :class:`MediaStats` are based on (docs/metrics.md "Media figures")."""

    PJSUA = "pjsua"  # the worker's own RTCP (pjsua2 ``Call.getStreamStat``): bridged legs
    RELAY_RTCP = "rtpengine-rtcp"  # rtpengine's counters + the peers' RTCP it relayed
    RELAY_COUNTERS = "rtpengine"  # rtpengine's packet counters only (no RTCP passed)


@dataclass(slots=True)
class MediaStats:
    """Per-leg media figures at the end of the leg: the worker's RTCP (``Call.getStreamStat``)
    or, for a bypassed leg, rtpengine's (switch/edge/relaystats.py); ``source`` says which."""

    codec: str | None = None
    rx_packets: int = 0
    tx_packets: int = 0
    rx_loss: int | None = 0  # packets lost towards us; None: nobody measured it
    jitter_ms: float | None = None  # receive jitter, mean
    rtt_ms: float | None = None  # RTCP round-trip time, mean
    mos: float | None = None  # E-model estimate (switch.call.quality)
    source: str | None = None  # a MediaSource value; None in records older than issue 16


@dataclass(frozen=True, slots=True)
class LegDialog:
    """The SIP dialog of a leg as the edge (and its rtpengine) sees it: the Call-ID and the
    far party's tag (the caller's From tag; a callee's To tag). rtpengine keys its sessions
    by Call-ID and tag, so these find a bypassed leg's relay figures (issue 16)."""

    leg: int
    call_id: str
    tag: str | None


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
    sip_call_id: str | None = None  # the leg's own dialog (LegDialog), for rtpengine
    sip_tag: str | None = None  # the callee's To tag
    media_path: str | None = None  # "bypass" once its RTP went past pjsua2 (issue 16)


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
    # Issue 16: the caller's From tag (its dialog is ``call_id``), and "bypass" once the
    # caller's RTP went past pjsua2 (then the media figures are rtpengine's).
    caller_tag: str | None = None
    media_path: str | None = None

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
