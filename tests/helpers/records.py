"""Synthetic call records for the tests of records, metrics, HTTP, dashboard and report.

Stamps are monotonic nanoseconds as a worker takes them; ``ms`` arguments are offsets
after the INVITE arrived, so a test states latencies directly.
"""

from __future__ import annotations

import itertools
from typing import Any

from switch.call.calllog import CallRecord, LegRecord, MediaStats

_ids = itertools.count(1)
BASE_NS = 5_000_000_000_000  # an arbitrary monotonic reading


def _ns(ms: float | None) -> int | None:
    return None if ms is None else BASE_NS + int(ms * 1_000_000)


def make_record(
    *,
    call_id: str | None = None,
    tenant: str | None = "tischlerei",
    caller: str | None = "+4917112345678",
    started_wall: float = 1_793_000_000.0,
    invite_out_ms: float | None = 1.2,
    ringing_in_ms: float | None = 40.0,
    ringing_relayed_ms: float | None = 40.6,
    answer_in_ms: float | None = None,
    answer_relayed_ms: float | None = None,
    ended_ms: float | None = None,
    outcome: str | None = None,
    by_service: bool = False,
    mos: float | None = None,
    worker: str = "w1",
) -> CallRecord:
    answered = answer_relayed_ms is not None
    media = None if mos is None else MediaStats("PCMU", 500, 500, 5, 4.5, 22.0, mos)
    leg = LegRecord(
        leg=1,
        target="heimbuero" if by_service else "jan.desk",
        uri="sip:201@127.0.0.1:5090",
        owner="service" if by_service else "jan",
        is_service=by_service,
        step=0,
        invite_out_ns=_ns(invite_out_ms),
        first_18x_in_ns=_ns(ringing_in_ms),
        answered_ns=_ns(answer_in_ms),
        ended_ns=_ns(ended_ms),
        status=200 if answered else None,
        media=media,
    )
    return CallRecord(
        call_id=call_id or f"call-{next(_ids)}@127.0.0.1",
        tenant=tenant,
        called="+49301234567",
        caller=caller,
        rule="weekday",
        worker=worker,
        started_wall=started_wall,
        invite_in_ns=BASE_NS,
        decision_ns=_ns(0.05),
        first_18x_in_ns=_ns(ringing_in_ms),
        first_18x_relayed_ns=_ns(ringing_relayed_ms),
        answer_in_ns=_ns(answer_in_ms),
        answer_relayed_ns=_ns(answer_relayed_ms),
        ended_ns=_ns(ended_ms),
        outcome=outcome,
        answered_by=leg.target if answered else None,
        answered_by_service=by_service and answered,
        hung_up_by="caller" if outcome else None,
        sip_status=200 if answered else None,
        media=media,
        legs=[leg] if invite_out_ms is not None else [],
    )


def same_call(record: CallRecord, **fields: Any) -> CallRecord:
    """``record``'s call in a later report (answered, ended): :func:`make_record` of
    ``fields`` with the call id, tenant, caller, start and worker of ``record``."""
    return make_record(
        call_id=record.call_id,
        tenant=record.tenant,
        caller=record.caller,
        started_wall=record.started_wall,
        worker=record.worker,
        **fields,
    )


def worker_report(**overrides: Any) -> dict[str, Any]:
    """A worker's ``voicemail`` control message."""
    base = {
        "op": "voicemail",
        "tenant": "mueller",
        "call_id": "abc@host",
        "caller": "+4917112345678",
        "called": "+49301234560",
        "path": "/var/voicemail/mueller/x.wav",
        "seconds": 12.34,
        "started_wall": 1_795_575_396.0,
    }
    return {**base, **overrides}
