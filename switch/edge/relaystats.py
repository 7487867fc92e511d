"""Per-leg media figures from rtpengine (issue 16): what the relay saw of a bypassed call.

Theory of operation
-------------------
With the media bypass (switch/call/mediapath.py) pjsua2 no longer receives a call's RTP,
so its RTCP figures (``Call.getStreamStat``) say nothing. rtpengine still relays every
packet and answers an ng ``query`` (and ``delete``) by Call-ID with, per SIP tag (one
side of the dialog), its medias and streams (codec; per stream the packets, bytes and
errors it *received from* that side, and their SSRC) and an ``SSRC`` table of RTCP
figures. :func:`side_stats` gives the packet counts per tag; what a call record takes
of a reply (and why) is switch/supervisor/relayfigures.py. :func:`ng_command` is the
I/O; bencode (BEP 3) is the ng protocol's encoding, :func:`bencode`/:func:`bdecode`.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from switch.addresses import parse_host_port
from switch.call.calllog import MediaStats
from switch.errors import MediaRelayError


def bencode(value: Any) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list | tuple):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """One bencoded value; byte strings come back as str where they are UTF-8."""
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError(f"bencode: {len(data) - end} bytes after the value")
    return value


def _decode(data: bytes, at: int) -> tuple[Any, int]:
    kind = data[at : at + 1]
    if kind == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        at += 1
        items: list[Any] = []
        while data[at : at + 1] != b"e":
            if at >= len(data):
                raise ValueError("bencode: unterminated list or dict")
            item, at = _decode(data, at)
            items.append(item)
        if kind == b"l":
            return items, at + 1
        keys = [k if isinstance(k, str) else k.decode("latin-1") for k in items[0::2]]
        return dict(zip(keys, items[1::2], strict=True)), at + 1
    colon = data.index(b":", at)
    size = int(data[at:colon])
    raw = data[colon + 1 : colon + 1 + size]
    if len(raw) != size:
        raise ValueError("bencode: string shorter than its length")
    try:
        return raw.decode(), colon + 1 + size
    except UnicodeDecodeError:
        return raw, colon + 1 + size


async def ng_command(ng_listen: str, command: dict[str, Any], wait: float = 1.0) -> Any:
    """Send one ng command (a dict with ``command``) and return rtpengine's reply dict."""
    host, port = parse_host_port(ng_listen)
    cookie = secrets.token_hex(6).encode()
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Reply(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            if data.startswith(cookie + b" ") and not answer.done():
                answer.set_result(data[len(cookie) + 1 :])

    transport, _ = await loop.create_datagram_endpoint(Reply, remote_addr=(host, port))
    try:
        transport.sendto(cookie + b" " + bencode(command))
        async with asyncio.timeout(wait):
            return bdecode(await answer)
    except (TimeoutError, OSError) as exc:
        raise MediaRelayError(
            f"rtpengine on {ng_listen} did not answer {command['command']!r}"
        ) from exc
    finally:
        transport.close()


async def ng_query(ng_listen: str, call_id: str, wait: float = 1.0) -> dict[str, MediaStats]:
    """The relay's figures of one call, per SIP tag; empty when rtpengine knows no such call."""
    reply = await ng_command(ng_listen, {"command": "query", "call-id": call_id}, wait)
    if not isinstance(reply, dict) or reply.get("result") != "ok":
        return {}
    return side_stats(reply)


def _rtp_stream(media: dict[str, Any]) -> dict[str, Any] | None:
    for stream in media.get("streams", []):
        if "RTP" in stream.get("flags", []):
            return stream if isinstance(stream, dict) else None
    return None


def side_stats(reply: dict[str, Any]) -> dict[str, MediaStats]:
    """A :class:`MediaStats` per tag of an ng ``query``/``delete`` reply (rtpengine 10.5)."""
    received: dict[str, tuple[str | None, int]] = {}
    peers: dict[str, list[str]] = {}
    for tag, side in (reply.get("tags") or {}).items():
        if not isinstance(side, dict):
            continue
        peers[tag] = [s["tag"] for s in side.get("subscribers", []) if isinstance(s, dict)]
        for media in side.get("medias", []):
            if not isinstance(media, dict) or media.get("type") != "audio":
                continue
            stream = _rtp_stream(media)
            packets = int(stream.get("stats", {}).get("packets", 0)) if stream else 0
            codec = str(media["codec"]).split("/", 1)[0] if media.get("codec") else None
            received[tag] = (codec, packets)
            break
    out: dict[str, MediaStats] = {}
    for tag, (codec, packets) in received.items():
        sent = sum(received[p][1] for p in peers.get(tag, []) if p in received)
        # Packet counts only: the RTCP figures (the ``SSRC`` table, filled only when an RR
        # names an SR that passed the relay) are read by switch/supervisor/relayfigures.py.
        stats = MediaStats(codec=codec, rx_packets=packets, tx_packets=sent)
        out[tag] = stats
    return out


__all__ = [
    "bdecode",
    "bencode",
    "ng_command",
    "ng_query",
    "side_stats",
]
