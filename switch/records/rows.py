"""Call records as rows: what a report writes (upserts) and what a query gives back.

Timestamps: workers stamp with ``time.monotonic_ns()``, which means nothing after a
reboot, so a row stores each stamp as milliseconds after the INVITE arrived (REAL),
next to ``started_wall`` (Unix seconds, UTC) and ``started_at`` (ISO 8601, UTC).

A row is keyed by (Call-ID, ``started_wall``) and *upserted*: ``started`` inserts it
with ``outcome`` NULL (an active call), ``answered`` and ``ended`` complete it. A
report never overwrites a later phase (``phase_rank``), so reports that arrive out of
order (e.g. replayed from the spool) leave the row as the latest phase said.

Privacy: the caller's number is stored as the dial plan's ``store_caller`` says
(:class:`CallerPolicy`: ``full``, ``masked`` or ``none``), with :func:`switch.masking.mask_number`.
Pure: no database access here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from switch.call.calllog import CallRecord, LegRecord, MediaStats
from switch.masking import mask_number

Phase = Literal["started", "answered", "ended"]
PHASE_RANK: Final[dict[str, int]] = {"started": 0, "answered": 1, "ended": 2}


class CallerPolicy(StrEnum):
    """How much of the caller's number a tenant allows us to keep (``store_caller``)."""

    FULL = "full"
    MASKED = "masked"
    NONE = "none"


def apply_caller_policy(caller: str | None, policy: CallerPolicy | str) -> str | None:
    policy = CallerPolicy(policy)
    if policy is CallerPolicy.FULL:
        return caller
    if policy is CallerPolicy.MASKED:
        return mask_number(caller)
    return None


# --------------------------------------------------------------------------- writing


def _ms(stamp: int | None, origin: int) -> float | None:
    return None if stamp is None else (stamp - origin) / 1e6


def _media_values(media: MediaStats | None) -> tuple[Any, ...]:
    if media is None:
        return (None,) * 7
    return (
        media.codec,
        media.rx_packets,
        media.tx_packets,
        media.rx_loss,
        media.jitter_ms,
        media.rtt_ms,
        media.mos,
    )


_CALL_COLUMNS: Final = (
    "call_id, started_wall, started_at, tenant, called, caller, caller_policy, rule, worker, "
    "phase, phase_rank, decision_ms, first_18x_in_ms, first_18x_relayed_ms, answer_in_ms, "
    "answer_relayed_ms, ended_ms, outcome, answered_by, answered_by_service, hung_up_by, "
    "sip_status, media_codec, media_rx_packets, media_tx_packets, media_rx_loss, "
    "media_jitter_ms, media_rtt_ms, media_mos, final_action, reason, updated_wall, direction, "
    "presented, transferred_by, transferred_to, transfer_outcome, caller_tag, media_path, "
    "media_source"
)
_UPDATABLE: Final = [
    c.strip() for c in _CALL_COLUMNS.split(",") if c.strip() not in ("call_id", "started_wall")
]
UPSERT_CALL: Final = (
    f"INSERT INTO calls ({_CALL_COLUMNS}) VALUES ({', '.join('?' * (len(_UPDATABLE) + 2))}) "
    "ON CONFLICT (call_id, started_wall) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    # A report never replaces a later one (spool replays may arrive out of order).
    + " WHERE excluded.phase_rank >= calls.phase_rank"
)
_LEG_COLUMNS: Final = (
    "target, uri, owner, is_service, step, invite_out_ms, first_18x_in_ms, answered_ms, "
    "ended_ms, status, reason, media_codec, media_rx_packets, media_tx_packets, "
    "media_rx_loss, media_jitter_ms, media_rtt_ms, media_mos, phase_rank, sip_call_id, "
    "sip_tag, media_path, media_source"
)
# Legs only accumulate (a report holds every leg so far), so an upsert per leg suffices;
# the call's row id comes from its key, so that a batch needs no round trip per record.
UPSERT_LEG: Final = (
    f"INSERT INTO legs (call_row, leg, {_LEG_COLUMNS}) VALUES ("
    "(SELECT id FROM calls WHERE call_id = ? AND started_wall = ?), "
    f"{', '.join('?' * (len(_LEG_COLUMNS.split(',')) + 1))}) "
    "ON CONFLICT (call_row, leg) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _LEG_COLUMNS.split(","))
    + " WHERE excluded.phase_rank >= legs.phase_rank"
)


def iso_utc(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def call_row_values(
    phase: str, record: CallRecord, policy: CallerPolicy, now_wall: float
) -> tuple[Any, ...]:
    origin = record.invite_in_ns
    return (
        record.call_id,
        record.started_wall,
        iso_utc(record.started_wall),
        record.tenant,
        record.called,
        apply_caller_policy(record.caller, policy),
        policy.value,
        record.rule,
        record.worker,
        phase,
        PHASE_RANK[phase],
        _ms(record.decision_ns, origin),
        _ms(record.first_18x_in_ns, origin),
        _ms(record.first_18x_relayed_ns, origin),
        _ms(record.answer_in_ns, origin),
        _ms(record.answer_relayed_ns, origin),
        _ms(record.ended_ns, origin),
        record.outcome,
        record.answered_by,
        int(record.answered_by_service),
        record.hung_up_by,
        record.sip_status,
        *_media_values(record.media),
        record.final_action,
        record.reason,
        now_wall,
        record.direction,
        record.presented,
        record.transferred_by,
        record.transferred_to,
        record.transfer_outcome,
        record.caller_tag,
        record.media_path,
        record.media.source if record.media else None,
    )


def leg_row_values(record: CallRecord, phase: str, leg: LegRecord) -> tuple[Any, ...]:
    origin = record.invite_in_ns
    return (
        record.call_id,
        record.started_wall,
        leg.leg,
        leg.target,
        leg.uri,
        leg.owner,
        int(leg.is_service),
        leg.step,
        _ms(leg.invite_out_ns, origin),
        _ms(leg.first_18x_in_ns, origin),
        _ms(leg.answered_ns, origin),
        _ms(leg.ended_ns, origin),
        leg.status,
        leg.reason,
        *_media_values(leg.media),
        PHASE_RANK[phase],
        leg.sip_call_id,
        leg.sip_tag,
        leg.media_path,
        leg.media.source if leg.media else None,
    )


# --------------------------------------------------------------------------- reading


def row_dict(description: Sequence[Sequence[Any]], row: Sequence[Any]) -> dict[str, Any]:
    """A fetched row as a dict, by the cursor's ``description``."""
    return {d[0]: v for d, v in zip(description, row, strict=True)}


def _media_dict(row: dict[str, Any]) -> dict[str, Any] | None:
    keys = ("codec", "rx_packets", "tx_packets", "rx_loss", "jitter_ms", "rtt_ms", "mos")
    source = row.pop("media_source", None)  # what the figures are based on (issue 16)
    media = {k: row.pop(f"media_{k}") for k in keys}
    if source is not None:
        media["source"] = source
    return None if all(v is None for v in media.values()) else media


def call_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A ``calls`` row as the API shows it: ``active``, ``media`` folded, ``legs`` to fill."""
    row.pop("phase_rank", None)
    row["answered_by_service"] = bool(row["answered_by_service"])
    row["active"] = row["outcome"] is None
    row["media"] = _media_dict(row)
    row["legs"] = []
    return row


def leg_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A ``legs`` row (without ``call_row``) as the API shows it."""
    row.pop("phase_rank", None)
    row["is_service"] = bool(row["is_service"])
    row["media"] = _media_dict(row)
    return row
