"""One-way audio delay and loss added by a media bridge, measured with our own RTP.

A tiny SIP caller (:class:`Phone`, just INVITE/ACK/BYE over UDP, RFC 3261 §17.1.1 and
§12.2) places one call to the target; the callee is SIPp's scenario with the SDP port
of our receiver socket. The caller's sender streams PCMU in 20 ms packets: silence,
and every 200 ms a loud 1 kHz burst. A bridge (pjsua2 conference) decodes and
re-encodes the audio, so RTP sequence numbers and timestamps do not survive it; the
audio does. The receiver finds each burst's first loud sample and compares when that
sample was "spoken" (send time minus the samples after it in its packet) with when
it was "heard" (arrival time minus the samples after it in its packet).

Send times are wall-clock (``time.time_ns``) taken just before ``sendto``; arrival
times are the kernel's receive timestamps (``SO_TIMESTAMPNS``), on the same clock.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench.sipp import BenchError
from bench.wire import summarize_ms

RATE = 8000
PTIME_S = 0.020
SAMPLES = int(RATE * PTIME_S)
BURST_EVERY = 10  # packets: a burst every 200 ms
BURST_LEN = 2  # packets: 40 ms of tone
THRESHOLD = 2000  # linear 16-bit: "loud"
# Linux asm-generic/socket.h; Python's socket module does not export it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def ulaw_encode(sample: int) -> int:
    """G.711 μ-law of one 16-bit linear sample (ITU-T G.711, with the usual bias 0x84)."""
    sign = 0x80 if sample < 0 else 0
    mag = min(abs(sample), 32635) + 0x84
    exponent = 7
    for e in range(7, -1, -1):
        if mag & (0x4000 >> (7 - e)):
            exponent = e
            break
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode(byte: int) -> int:
    b = ~byte & 0xFF
    sign, exponent, mantissa = b & 0x80, (b >> 4) & 0x07, b & 0x0F
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -mag if sign else mag


_DECODE = [ulaw_decode(i) for i in range(256)]
SILENCE = bytes([ulaw_encode(0)]) * SAMPLES
# cos, so the very first sample of a burst is loud: the onset is sample 0 of its packet.
TONE = bytes(
    ulaw_encode(round(12000 * math.cos(2 * math.pi * 1000 * n / RATE))) for n in range(SAMPLES)
)


def payload_for(seq_index: int) -> bytes:
    phase = seq_index % BURST_EVERY
    return TONE if seq_index > 0 and phase < BURST_LEN else SILENCE


def is_burst_start(seq_index: int) -> bool:
    return seq_index > 0 and seq_index % BURST_EVERY == 0


@dataclass
class Received:
    t: float  # kernel arrival time, seconds since the epoch
    seq: int
    payload: bytes
    ssrc: int = 0


def rtp_packet(seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    """RFC 3550 §5.1 fixed header, version 2, payload type 0 (PCMU)."""
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0), seq & 0xFFFF, ts, ssrc) + payload


class Receiver(threading.Thread):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.packets: list[Received] = []
        # Where each stream (SSRC) last came from: a symmetric-RTP phone answers there.
        self.sources: dict[int, tuple[str, int]] = {}
        self.stop = threading.Event()
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.settimeout(0.1)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, anc, _flags, addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except TimeoutError:
                continue
            except OSError:
                return
            t = time.time()
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    t = sec + nsec / 1e9
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            cc = data[0] & 0x0F
            seq, ssrc = struct.unpack("!H4xI", data[2:12])
            self.sources[ssrc] = addr
            self.packets.append(Received(t, seq, data[12 + 4 * cc :], ssrc))

    def reply_address(self, prefer: int) -> tuple[str, int] | None:
        """Where a symmetric-RTP callee sends (RFC 4961): the source of stream ``prefer``
        (the caller's own, relayed unchanged), else of the stream heard last (a bridge's)."""
        if prefer in self.sources:
            return self.sources[prefer]
        if not self.packets:
            return None
        return self.sources.get(self.packets[-1].ssrc)


Destination = tuple[str, int] | Callable[[], tuple[str, int] | None]


PHONE_PRIORITY = 20
"""SCHED_RR priority of a sending thread (:func:`on_time`): above the switch's media
threads (rtpengine 10, the bridge 5), which it takes next to nothing from."""


@contextlib.contextmanager
def on_time() -> Iterator[None]:
    """The calling thread at SCHED_RR while it sends. The bench's phones stand for phones
    on other machines, which load beside the switch (``--burn``) does not delay: a sender
    that fell behind sent its late packets in a burst, and the bridge's jitter buffer
    rightly settled a frame deeper for that jitter (issue 16, docs/performance.md
    "Bridge"). Where the host refuses real-time threads, it sends as before."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(PHONE_PRIORITY))
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)


def stream(
    sock: socket.socket, dest: Destination, seconds: float, ssrc: int | None = None
) -> dict[int, float]:
    """Send PCMU for ``seconds`` in real time; returns send time per packet index.

    ``dest`` may be a function, asked before every packet (None: skip that packet)."""
    with on_time():
        return _stream(sock, dest, seconds, ssrc)


def _stream(
    sock: socket.socket, dest: Destination, seconds: float, ssrc: int | None
) -> dict[int, float]:
    ssrc = random.getrandbits(32) if ssrc is None else ssrc
    seq0 = random.getrandbits(16)
    sent: dict[int, float] = {}
    n = int(seconds / PTIME_S)
    t0 = time.monotonic()
    for k in range(n):
        delay = t0 + k * PTIME_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pkt = rtp_packet(seq0 + k, k * SAMPLES, ssrc, payload_for(k), marker=k == 0)
        to = dest() if callable(dest) else dest
        if to is None:
            continue
        sent[k] = time.time_ns() / 1e9
        sock.sendto(pkt, to)
    return sent


def onsets(packets: list[Received]) -> list[float]:
    """Times at which a burst was heard: first loud sample after at least 60 ms of quiet."""
    out = []
    quiet = 0
    for p in packets:
        n = len(p.payload)
        for i, byte in enumerate(p.payload):
            if abs(_DECODE[byte]) >= THRESHOLD:
                if quiet >= int(0.060 * RATE):
                    out.append(p.t - (n - i) / RATE)
                quiet = 0
            else:
                quiet += 1
    return out


def match_bursts(sent: dict[int, float], heard: list[float]) -> tuple[list[float], int]:
    """Delays of the bursts that were heard, and how many bursts were sent.

    A burst's onset is "spoken" when its packet is complete: send time minus one
    packet. Each onset belongs to the latest burst spoken before it: bursts are 200 ms
    apart, so a delay of more than 200 ms would alias (read as 200 ms less, and the
    burst it hid as lost); the figures here stay well below that.
    """
    spoken = sorted(sent[k] - SAMPLES / RATE for k in sent if is_burst_start(k))
    delays: dict[int, float] = {}
    for h in heard:
        idx = None
        for j, s in enumerate(spoken):
            if s <= h:
                idx = j
            else:
                break
        if idx is not None and idx not in delays:
            delays[idx] = h - spoken[idx]
    return list(delays.values()), len(spoken)


# --- a minimal SIP caller --------------------------------------------------------------


class SipError(BenchError):
    """The media test call could not be set up or torn down."""


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    remote_media: tuple[str, int] | None = None
    status: int = 0


def _headers(msg: str) -> tuple[str, list[tuple[str, str]], str]:
    head, _, body = msg.partition("\r\n\r\n")
    lines = head.split("\r\n")
    hdrs = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        hdrs.append((name.strip().lower(), value.strip()))
    return lines[0], hdrs, body


def _get(hdrs: list[tuple[str, str]], *names: str) -> list[str]:
    return [v for n, v in hdrs if n in names]


class Phone:
    """Just enough of a UAC for one call over UDP on 127.0.0.1."""

    def __init__(self, media_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.media_port = media_port
        self.cseq = 1

    def close(self) -> None:
        self.sock.close()

    def _request(self, method: str, uri: str, d: Dialog, cseq: int, body: str = "") -> str:
        branch = f"z9hG4bK{os.urandom(6).hex()}"
        to = f"<{uri}>" if not d.remote_tag else f"<{uri}>;tag={d.remote_tag}"
        lines = [
            f"{method} {d.remote_target or uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            *(f"Route: {r}" for r in d.route_set),
            f"From: <sip:media@127.0.0.1:{self.port}>;tag={d.local_tag}",
            f"To: {to}",
            f"Call-ID: {d.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:media@127.0.0.1:{self.port}>",
            "Max-Forwards: 70",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def invite(self, target: tuple[str, int], user: str, timeout: float = 10.0) -> Dialog:
        uri = f"sip:{user}@{target[0]}:{target[1]}"
        d = Dialog(call_id=f"{os.urandom(8).hex()}@127.0.0.1", local_tag=os.urandom(4).hex())
        sdp = (
            "v=0\r\no=media 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
        )
        msg = self._request("INVITE", uri, d, self.cseq, sdp)
        self.sock.sendto(msg.encode(), target)
        end = time.monotonic() + timeout
        retrans, provisional = 0.5, False
        next_send = time.monotonic() + retrans
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, min(next_send, end) - time.monotonic()))
            try:
                data, src = self.sock.recvfrom(65535)
            except TimeoutError:
                if not provisional:  # RFC 3261 §17.1.1.2 timer A
                    self.sock.sendto(msg.encode(), target)
                    retrans *= 2
                next_send = time.monotonic() + retrans
                continue
            first, hdrs, body = _headers(data.decode(errors="replace"))
            parts = first.split(" ", 2)
            if parts[0] != "SIP/2.0" or _get(hdrs, "call-id", "i") != [d.call_id]:
                continue
            status = int(parts[1])
            if status < 200:
                provisional = True
                continue
            d.status = status
            to = (_get(hdrs, "to", "t") or [""])[0]
            m = re.search(r";\s*tag=([^;>\s]+)", to)
            d.remote_tag = m.group(1) if m else ""
            if status >= 300:
                self._ack(d, uri, src, via_same=True, original=msg)
                raise SipError(f"media call to {uri!r} answered {first!r}")
            contact = (_get(hdrs, "contact", "m") or [""])[0]
            cm = re.search(r"<([^>]+)>", contact)
            d.remote_target = cm.group(1) if cm else contact.split(";")[0]
            rr: list[str] = []
            for v in _get(hdrs, "record-route"):
                rr.extend(x.strip() for x in v.split(","))
            d.route_set = list(reversed(rr))
            c = re.search(r"c=IN IP4 (\S+)", body)
            mm = re.search(r"m=audio (\d+)", body)
            if not (c and mm):
                raise SipError(f"200 OK from {uri!r} carries no audio SDP: {body!r}")
            d.remote_media = (c.group(1), int(mm.group(1)))
            self._ack(d, uri, src)
            return d
        raise SipError(f"no final response to INVITE {uri!r} within {timeout} s")

    def _ack(
        self,
        d: Dialog,
        uri: str,
        src: tuple[str, int],
        via_same: bool = False,
        original: str = "",
    ) -> None:
        if via_same:  # ACK for a non-2xx: same branch as the INVITE (RFC 3261 §17.1.1.3)
            via = next(ln for ln in original.split("\r\n") if ln.startswith("Via:"))
            ack = "\r\n".join(
                [
                    f"ACK {uri} SIP/2.0",
                    via,
                    f"From: <sip:media@127.0.0.1:{self.port}>;tag={d.local_tag}",
                    f"To: <{uri}>;tag={d.remote_tag}",
                    f"Call-ID: {d.call_id}",
                    f"CSeq: {self.cseq} ACK",
                    "Max-Forwards: 70",
                    "Content-Length: 0",
                ]
            )
            self.sock.sendto((ack + "\r\n\r\n").encode(), src)
            return
        self.sock.sendto(self._request("ACK", uri, d, self.cseq).encode(), self._next_hop(d, src))

    def _next_hop(self, d: Dialog, fallback: tuple[str, int]) -> tuple[str, int]:
        uri = d.route_set[0] if d.route_set else d.remote_target
        m = re.search(r"sip:(?:[^@>]*@)?([\d.]+)(?::(\d+))?", uri)
        if not m:
            return fallback
        return m.group(1), int(m.group(2) or 5060)

    def bye(self, d: Dialog, uri_user: str, target: tuple[str, int], timeout: float = 5.0) -> int:
        self.cseq += 1
        uri = f"sip:{uri_user}@{target[0]}:{target[1]}"
        msg = self._request("BYE", uri, d, self.cseq)
        hop = self._next_hop(d, target)
        end = time.monotonic() + timeout
        interval = 0.5
        while time.monotonic() < end:
            self.sock.sendto(msg.encode(), hop)
            self.sock.settimeout(interval)
            t_wait = time.monotonic() + interval
            while time.monotonic() < t_wait:
                try:
                    data, _ = self.sock.recvfrom(65535)
                except TimeoutError:
                    break
                first, hdrs, _ = _headers(data.decode(errors="replace"))
                parts = first.split(" ", 2)
                if (
                    parts[0] == "SIP/2.0"
                    and _get(hdrs, "call-id", "i") == [d.call_id]
                    and any(v.endswith("BYE") for v in _get(hdrs, "cseq"))
                    and int(parts[1]) >= 200
                ):
                    return int(parts[1])
            interval = min(interval * 2, 4)
        raise SipError(f"no final response to BYE within {timeout} s")


def measure(
    target: tuple[str, int],
    rx_sock: socket.socket,
    seconds: float,
    user: str = "uas",
    reverse: bool = False,
) -> dict[str, object]:
    """Call ``target``, stream ``seconds`` of bursts, report delay and loss at ``rx_sock``.

    ``rx_sock`` is bound to the port that the callee (SIPp) advertises in its SDP. With
    ``reverse`` the callee talks too (``rx_sock`` answers like a symmetric-RTP phone, to
    where the caller's audio came from, RFC 4961), and the caller's socket measures that
    callee → caller direction (key ``reverse``), during the same call.
    """
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    tx_port = tx.getsockname()[1]
    phone = Phone(tx_port)
    receiver = Receiver(rx_sock)
    receiver.start()
    back = Receiver(tx) if reverse else None
    replies: dict[int, float] = {}
    replier: threading.Thread | None = None
    try:
        t_inv = time.monotonic()
        d = phone.invite(target, user)
        setup = time.monotonic() - t_inv
        if d.remote_media is None:  # pragma: no cover - invite() raises first
            raise SipError("no remote media address")
        ssrc = random.getrandbits(32)
        if back is not None:
            back.start()

            def answer() -> None:
                time.sleep(0.3)  # the callee answers once it hears the caller
                replies.update(stream(rx_sock, lambda: receiver.reply_address(ssrc), seconds))

            replier = threading.Thread(target=answer, daemon=True)
            replier.start()
        sent = stream(tx, d.remote_media, seconds, ssrc)
        if replier is not None:
            replier.join(timeout=seconds + 5)
        time.sleep(0.4)  # the last bursts are still in the bridge's buffers
        bye = phone.bye(d, user, target)
    finally:
        for r in (receiver, back):
            if r is not None:
                r.stop.set()
                if r.is_alive():
                    r.join(timeout=2)
        phone.close()
        tx.close()
    result: dict[str, object] = {
        "seconds": seconds,
        "setup_s": round(setup, 4),
        "remote_media": f"{d.remote_media[0]}:{d.remote_media[1]}",
        **direction(sent, receiver.packets),
        "bye_status": bye,
    }
    if back is not None:
        result["reverse"] = direction(replies, back.packets)
    return result


def direction(sent: dict[int, float], received: list[Received]) -> dict[str, object]:
    """Delay and loss of one direction: bursts sent (index -> time) against what was heard.

    Other calls to the same callee (background load) send to this port too, and a bridge
    sends a stream of its own: keep the stream (SSRC) in which the most bursts were heard.
    """
    streams: dict[int, list[Received]] = {}
    for p in received:
        streams.setdefault(p.ssrc, []).append(p)
    packets = max(streams.values(), key=lambda ps: len(onsets(ps)), default=[])
    delays, n_bursts = match_bursts(sent, onsets(packets))
    seqs = [p.seq for p in packets]
    gaps = sum(max(0, ((b - a) & 0xFFFF) - 1) for a, b in itertools.pairwise(seqs))
    return {
        "streams_received": len(streams),
        "packets_sent": len(sent),
        "packets_received": len(packets),
        "rtp_seq_gaps": gaps,
        "bursts_sent": n_bursts,
        "bursts_heard": len(delays),
        "burst_loss": n_bursts - len(delays),
        "delay_ms": summarize_ms(delays),
        "delays_s": delays,
    }
