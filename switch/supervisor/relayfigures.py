"""A bypassed call's media figures from rtpengine, folded into its record (issue 16).

Theory of operation
-------------------
With the media bypass (switch/call/mediapath.py) pjsua2 no longer receives a call's RTP,
so its RTCP figures (``Call.getStreamStat``) say nothing. rtpengine still relays every
packet and answers an ng ``query`` (and ``delete``) by Call-ID with, per SIP tag (one
side of the dialog), its medias and streams: codec, and per stream the packets, bytes
and errors it *received from* that side, and the SSRC of those packets.

Its top-level ``SSRC`` table holds RTCP figures, keyed by the SSRC of the peer that *sent
the report* (measured with rtpengine 10.5.3, userspace): "cumulative loss" and jitter
as that peer's receiver reports say (RFC 3550 §6.4.1), and a round-trip time rtpengine
measures itself, from an SR it forwarded to the RR that names it ("round-trip time
leg", µs). The table stays empty when no RR refers to an SR that passed the relay: SIPp
sends no RTCP, and a call shorter than the peers' first report interval (baresip: about
5 s) has none either.

So :func:`leg_figures` gives, for the far party of one leg (its tag):

* ``rx_packets`` / ``tx_packets``: rtpengine's counters of the RTP it received from that
  party / from the other side of the session (what it relayed towards the party);
* ``rx_loss`` and ``jitter_ms``: what the *receiver* of the party's audio reported in
  RTCP about it (the loss on the whole way from the party's phone to the other phone),
  None when no report passed (:data:`MediaSource.RELAY_COUNTERS`): packet counters
  cannot tell a loss before the relay, and no figure is made up;
* ``rtt_ms``: rtpengine's own round-trip time to that party (from the party's RRs);
* ``mos``: our E-model (switch/call/quality.py) from those figures, as for a bridged
  leg, so that the dashboard's median compares like with like; None without a loss figure.

:func:`with_relay_figures` asks for every bypassed leg of a finished call (the
supervisor, before it files the record); a call stays queryable for ``delete_delay``
seconds after Kamailio's ``delete`` (the edge's BYE), so the query after the end finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from dataclasses import replace
from typing import Any

from switch.call import quality
from switch.call.calllog import CallRecord, MediaSource, MediaStats
from switch.call.recorder import BYPASS
from switch.edge.relaystats import ng_command
from switch.errors import MediaRelayError

log = logging.getLogger("rufweiche")


def _rtp_stream(media: dict[str, Any]) -> dict[str, Any] | None:
    for stream in media.get("streams", []):
        if isinstance(stream, dict) and "RTP" in stream.get("flags", []):
            return stream
    return None


def _audio(side: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The codec and the RTP stream of a tag's first audio media."""
    for media in side.get("medias", []):
        if isinstance(media, dict) and media.get("type") == "audio":
            codec = str(media["codec"]).split("/", 1)[0] if media.get("codec") else None
            return codec, _rtp_stream(media)
    return None, None


def _far_tag(tags: dict[str, Any], tag: str | None) -> str | None:
    """The far party's tag: as given, or the one side not on loopback (the workers are)."""
    if tag is not None:
        return tag if tag in tags else None
    outside = []
    for name, side in tags.items():
        _, stream = _audio(side) if isinstance(side, dict) else (None, None)
        address = str(((stream or {}).get("endpoint") or {}).get("address", "127.0.0.1"))
        with contextlib.suppress(ValueError):
            if not ipaddress.ip_address(address).is_loopback:
                outside.append(name)
    return outside[0] if len(outside) == 1 else None


def _ssrc_report(reply: dict[str, Any], ssrc: Any) -> dict[str, Any] | None:
    table = reply.get("SSRC")
    entry = table.get(str(ssrc)) if isinstance(table, dict) and ssrc is not None else None
    return entry if isinstance(entry, dict) else None


def leg_figures(reply: dict[str, Any], tag: str | None) -> MediaStats | None:
    """The relay's figures of the party with ``tag`` in one session (module docstring);
    None when the reply does not show that party (no such call, tag or audio)."""
    tags = reply.get("tags") if reply.get("result") == "ok" else None
    if not isinstance(tags, dict):
        return None
    far = _far_tag(tags, tag)
    if far is None or not isinstance(tags[far], dict):
        return None
    codec, stream = _audio(tags[far])
    if stream is None:
        return None
    peers = [s["tag"] for s in tags[far].get("subscribers", []) if isinstance(s, dict)]
    others = [_audio(tags[p])[1] for p in peers if isinstance(tags.get(p), dict)]
    other = next((o for o in others if o is not None), None)
    sent = sum(int((o or {}).get("stats", {}).get("packets", 0)) for o in others)
    # The receiver of the party's audio reports on it under its own SSRC (the SSRC of the
    # packets the relay got from the other side); the party's own reports carry the RTT.
    heard = _ssrc_report(reply, other.get("SSRC") if other else None)
    own = _ssrc_report(reply, stream.get("SSRC"))
    loss = heard.get("cumulative loss") if heard else None
    average = (heard or {}).get("average MOS") or {}
    rtt_us = ((own or {}).get("average MOS") or {}).get("round-trip time leg")
    stats = MediaStats(
        codec=codec,
        rx_packets=int(stream.get("stats", {}).get("packets", 0)),
        tx_packets=sent,
        rx_loss=int(loss) if isinstance(loss, int) else None,
        jitter_ms=float(average["jitter"]) if isinstance(average.get("jitter"), int) else None,
        rtt_ms=rtt_us / 1000.0 if isinstance(rtt_us, int) and rtt_us > 0 else None,
    )
    relay_rtcp = stats.rx_loss is not None
    stats.source = (MediaSource.RELAY_RTCP if relay_rtcp else MediaSource.RELAY_COUNTERS).value
    stats.mos = quality.mos_for(stats)
    return stats


def fold(record: CallRecord, replies: dict[str, dict[str, Any]]) -> CallRecord:
    """The record with the relay's figures (``replies`` by Call-ID) for every bypassed leg;
    a bypassed leg the relay did not show gets none (pjsua2's would be silence)."""
    media = record.media
    if record.media_path == BYPASS:
        media = leg_figures(replies.get(record.call_id, {}), record.caller_tag)
    legs = [
        replace(leg, media=leg_figures(replies.get(leg.sip_call_id or "", {}), leg.sip_tag))
        if leg.media_path == BYPASS
        else leg
        for leg in record.legs
    ]
    return replace(record, media=media, legs=legs)


def wanted(record: CallRecord) -> bool:
    """Whether any leg of ``record`` was bypassed (its figures must come from the relay)."""
    return record.media_path == BYPASS or any(leg.media_path == BYPASS for leg in record.legs)


async def with_relay_figures(record: CallRecord, ng_listen: str, wait: float = 1.0) -> CallRecord:
    """Ask rtpengine for each bypassed leg's session (in parallel, ``wait`` s at most) and
    :func:`fold` the answers in; a relay that does not answer leaves those legs without."""
    call_ids = {record.call_id} if record.media_path == BYPASS else set()
    call_ids |= {leg.sip_call_id or "" for leg in record.legs if leg.media_path == BYPASS}
    wanted = sorted(c for c in call_ids if c)

    async def one(call_id: str) -> dict[str, Any]:
        try:
            reply = await ng_command(ng_listen, {"command": "query", "call-id": call_id}, wait)
        except MediaRelayError as exc:
            log.warning("call %s: no relay figures: %s", record.call_id, exc)
            return {}
        return reply if isinstance(reply, dict) else {}

    replies = await asyncio.gather(*(one(c) for c in wanted))
    return fold(record, dict(zip(wanted, replies, strict=True)))


__all__ = ["fold", "leg_figures", "wanted", "with_relay_figures"]
