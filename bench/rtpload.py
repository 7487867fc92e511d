"""A load generator for many held calls with RTP both ways, on one asyncio loop.

    gen = Generator(("127.0.0.1", 5060), "+4930...")  # where the INVITEs go, whom they call
    async with gen:                      # binds the caller's and the callee's SIP sockets
        await gen.place(200, rate=20)    # calls held with RTP (caller <-> callee)
        gen.start_window(); await asyncio.sleep(60); gen.stop_window()
        await gen.hang_up()

One process plays every caller (a minimal UAC: INVITE/ACK/BYE, RFC 3261 §17.1.1, §12.2,
loose routing through the Record-Route set) and every callee (a minimal UAS on its own
port: 180 + 200 with SDP, re-INVITEs answered with the same SDP and the new offer's
address taken as the destination, as a phone does). Each call has one RTP socket per
side. Every 20 ms one tick sends one PCMU-sized packet each way for every held call (one
batched loop, no per-call task); the payload carries a magic, the direction, the sender's
id, a sequence number and the send time, so that a relay that forwards RTP unchanged
(rtpengine, a bypassed worker) lets the far socket compute one-way delay (kernel receive
timestamp, ``SO_TIMESTAMPNS``, minus send time) and loss (per sender: sent − received)
without pairing the two legs' dialogs. A transcoding bridge destroys the payload: this
generator measures relays, not the pjsua2 bridge (bench/media.py does that).

With ``engine="c"`` the packets go through ``bench/rtpblast.c`` instead (the same wire
format and figures; one C loop, one process beside this one): near 300 calls the Python
loop took more than half a core and ran its ticks late, which the switch under test
needed (issue 16, 500 held calls on 2 cores).

Figures count only packets sent inside the measuring window. The generator reports its
own pace: how late the ticks ran (p50/p99/max), so that a saturated generator is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from bench.media import SO_TIMESTAMPNS, _get, _headers
from bench.rtpblast import Blaster
from bench.wire import summarize_ms

MAGIC = b"RWB1"
HEAD = struct.Struct("!4sBIIQ")  # magic, direction (0 caller->callee, 1 back), id, seq, ns
PAYLOAD_LEN = 160
PTIME = 0.020
BIN_US = 10  # delay histogram resolution
BINS = 100_000  # up to 1 s; beyond that: the overflow count
FORWARD, BACK = 0, 1
SHORT_DEVICE = "short"  # the callee's user for short calls in a dial plan


@dataclass
class Direction:
    """One direction's counters inside the window, and its delay histogram."""

    sent: int = 0
    received: int = 0
    late: int = 0  # beyond the histogram (> 1 s)
    hist: list[int] = field(default_factory=lambda: [0] * BINS)
    maximum: float = 0.0
    # Per sender (a call side): packets sent and received in the window.
    senders: dict[int, list[int]] = field(default_factory=dict)

    def sent_by(self, ident: int) -> None:
        self.sent += 1
        self.senders.setdefault(ident, [0, 0])[0] += 1

    def add(self, delay_s: float, ident: int) -> None:
        self.senders.setdefault(ident, [0, 0])[1] += 1
        self.received += 1
        us = delay_s * 1e6
        self.maximum = max(self.maximum, delay_s)
        i = int(us // BIN_US)
        if 0 <= i < BINS:
            self.hist[i] += 1
        elif i >= BINS:
            self.late += 1
        else:
            self.hist[0] += 1  # clock granularity: a negative delay is ~0

    def quantile_ms(self, q: float) -> float | None:
        total = sum(self.hist) + self.late
        if not total:
            return None
        rank = q * total
        seen = 0
        for i, n in enumerate(self.hist):
            seen += n
            if seen >= rank:
                return (i + 0.5) * BIN_US / 1000
        return self.maximum * 1000

    def summary(self) -> dict[str, Any]:
        lost = max(0, self.sent - self.received)
        lossy = sorted(sent - got for sent, got in self.senders.values() if got < sent)
        return {
            "calls_with_loss": len(lossy),
            "most_lost_in_one_call": lossy[-1] if lossy else 0,
            "sent": self.sent,
            "received": self.received,
            "lost": lost,
            "loss_pct": round(100 * lost / self.sent, 4) if self.sent else None,
            "p50_ms": self.quantile_ms(0.50),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": round(self.maximum * 1000, 3),
        }


def _sdp(host: str, port: int, version: int = 1) -> str:
    return (
        f"v=0\r\no=bench 1 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
    )


def _media(body: str) -> tuple[str, int] | None:
    c = re.search(r"c=IN IP4 (\S+)", body)
    m = re.search(r"m=audio (\d+)", body)
    return (c.group(1), int(m.group(1))) if c and m else None


def _hop(uri: str, fallback: tuple[str, int]) -> tuple[str, int]:
    m = re.search(r"sip:(?:[^@>;]*@)?([\d.]+)(?::(\d+))?", uri)
    return (m.group(1), int(m.group(2) or 5060)) if m else fallback


@dataclass
class Leg:
    """One side of one call: its RTP socket, where it sends, what it has sent."""

    ident: int
    direction: int
    sock: socket.socket
    dest: tuple[str, int] | None = None
    seq: int = 0
    rtp: bool = True

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def host(self) -> str:
        return str(self.sock.getsockname()[0])


@dataclass
class CallerDialog:
    leg: Leg
    call_id: str
    tag: str
    uri: str
    invite: str = ""
    remote_tag: str = ""
    target: str = ""
    route: list[str] = field(default_factory=list)
    done: asyncio.Future[int] | None = None
    bye_done: asyncio.Future[int] | None = None
    cseq: int = 1
    setup_s: float | None = None
    status: int = 0  # the INVITE's final status; 0: none within the wait


class _Sip(asyncio.DatagramProtocol):
    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.handle(data.decode(errors="replace"), addr)

    def send(self, text: str, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), addr)


class Generator:
    def __init__(
        self,
        target: tuple[str, int],
        user: str,
        short_user: str | None = None,
        caller_host: str = "127.0.0.1",
        engine: Literal["python", "c"] = "python",
    ) -> None:
        self.target, self.user, self.short_user = target, user, short_user or user
        self.caller_host = caller_host  # the callee is always on 127.0.0.1
        self.uac = _Sip(self._uac_message)
        self.uas = _Sip(self._uas_message)
        self.callers: dict[str, CallerDialog] = {}
        self.callees: dict[str, tuple[Leg, str]] = {}  # Call-ID -> leg, the 200 we sent
        self.unacked: dict[str, tuple[str, tuple[str, int], float]] = {}
        self.ways = (Direction(), Direction())
        self.window = (0.0, 0.0)  # send times (ns as s) inside which packets count
        self.lateness: list[float] = []
        self._ids = 0
        self._ticker: asyncio.Task[None] | None = None
        self.uac_port = self.uas_port = 0
        # "c": the packets go through bench/rtpblast.c (one C loop), the dialogs stay here.
        self.engine = engine
        self.blaster: Blaster | None = None

    # --- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Generator:
        loop = asyncio.get_running_loop()
        for proto, host in ((self.uac, self.caller_host), (self.uas, "127.0.0.1")):
            transport, _ = await loop.create_datagram_endpoint(
                lambda proto=proto: proto,  # type: ignore[misc]
                local_addr=(host, 0),
            )
            proto.transport = transport
        assert self.uac.transport is not None
        assert self.uas.transport is not None
        self.uac_port = self.uac.transport.get_extra_info("sockname")[1]
        self.uas_port = self.uas.transport.get_extra_info("sockname")[1]
        if self.engine == "c":
            self.blaster = Blaster.start()
        else:
            self._ticker = asyncio.create_task(self._tick())
        self._resender = asyncio.create_task(self._resend())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in (self._ticker, self._resender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for leg in self._legs():
            self._close_leg(leg)
        if self.blaster is not None:
            self.blaster.close()
        for proto in (self.uac, self.uas):
            if proto.transport is not None:
                proto.transport.close()

    def _legs(self) -> list[Leg]:
        return [d.leg for d in self.callers.values()] + [leg for leg, _ in self.callees.values()]

    def _new_leg(self, direction: int, rtp: bool) -> Leg:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
        sock.bind((self.caller_host if direction == FORWARD else "127.0.0.1", 0))
        self._ids += 1
        leg = Leg(self._ids, direction, sock, rtp=rtp)
        if self.blaster is not None:
            self.blaster.leg(leg.ident, direction, sock, rtp)
        else:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._receive, sock)
        return leg

    def _aim(self, leg: Leg, dest: tuple[str, int] | None) -> None:
        """Where ``leg`` sends from now on (None: nowhere)."""
        leg.dest = dest
        if self.blaster is not None:
            self.blaster.aim(leg.ident, dest)

    def _close_leg(self, leg: Leg) -> None:
        if self.blaster is not None:
            self.blaster.drop(leg.ident)
        else:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(leg.sock.fileno())
        leg.sock.close()

    # --- RTP ----------------------------------------------------------------------

    def _receive(self, sock: socket.socket) -> None:
        w0, w1 = self.window
        space = socket.CMSG_SPACE(16)
        while True:
            try:
                data, anc, _flags, _addr = sock.recvmsg(2048, space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) < 12 + HEAD.size or data[12:16] != MAGIC:
                continue  # pjsua's own silence, RTCP
            t = time.time()
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    t = sec + nsec / 1e9
            _, way, ident, _seq, ns = HEAD.unpack_from(data, 12)
            sent = ns / 1e9
            if w0 <= sent < w1:
                self.ways[way].add(t - sent, ident)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        pad = b"\xff" * (PAYLOAD_LEN - HEAD.size)
        due = loop.time()
        while True:
            due += PTIME
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                due = loop.time()  # behind: do not send a burst to catch up
            self.lateness.append(loop.time() - due)
            w0, w1 = self.window
            for leg in self._legs():
                if leg.dest is None or not leg.rtp:
                    continue
                leg.seq += 1
                ns = time.time_ns()
                head = struct.pack("!BBHII", 0x80, 0, leg.seq & 0xFFFF, leg.seq * 160, leg.ident)
                packet = head + HEAD.pack(MAGIC, leg.direction, leg.ident, leg.seq, ns) + pad
                with contextlib.suppress(OSError):
                    leg.sock.sendto(packet, leg.dest)
                    if w0 <= ns / 1e9 < w1:
                        self.ways[leg.direction].sent_by(leg.ident)

    def start_window(self) -> None:
        self.window = (time.time(), float("inf"))
        self.lateness.clear()
        if self.blaster is not None:
            self.blaster.start_window()

    def stop_window(self) -> None:
        self.window = (self.window[0], time.time())
        if self.blaster is not None:
            self.blaster.stop_window()

    def collect(self) -> None:
        """With the C engine: its figures into :attr:`ways` and :attr:`lateness` (call it
        once the packets still on their way have arrived)."""
        if self.blaster is None:
            return
        figures = self.blaster.report()
        self.lateness = list(figures["lateness"])
        for way, got in zip(self.ways, figures["ways"], strict=True):
            way.sent, way.received, way.late = got["sent"], got["received"], got["late"]
            way.maximum = got["maximum"]
            way.hist = [0] * BINS
            for i, n in got["hist"]:
                way.hist[i] = n
            way.senders = {int(k): list(v) for k, v in got["senders"].items()}

    def pace(self) -> dict[str, Any]:
        return {"ticks": len(self.lateness), "late_ms": summarize_ms(self.lateness)}

    # --- SIP: the callers ---------------------------------------------------------

    def _request(self, method: str, d: CallerDialog, cseq: int, body: str = "") -> str:
        to = f"<{d.uri}>" + (f";tag={d.remote_tag}" if d.remote_tag else "")
        lines = [
            f"{method} {d.target or d.uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.caller_host}:{self.uac_port};"
            f"branch=z9hG4bK{os.urandom(6).hex()};rport",
            *(f"Route: {r}" for r in d.route),
            f"From: <sip:bench@{self.caller_host}:{self.uac_port}>;tag={d.tag}",
            f"To: {to}",
            f"Call-ID: {d.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:bench@{self.caller_host}:{self.uac_port}>",
            "Max-Forwards: 70",
            *(["Content-Type: application/sdp"] if body else []),
            f"Content-Length: {len(body)}",
        ]
        return "\r\n".join(lines) + "\r\n\r\n" + body

    async def call(self, short: bool = False, wait_s: float = 8.0) -> CallerDialog:
        """One call, until its 200 (or failure: ``setup_s`` None). Short calls send no RTP."""
        loop = asyncio.get_running_loop()
        user = self.short_user if short else self.user
        uri = f"sip:{user}@{self.target[0]}:{self.target[1]}"
        d = CallerDialog(self._new_leg(FORWARD, not short), f"{os.urandom(8).hex()}@b", "t" +
                         os.urandom(4).hex(), uri)  # fmt: skip
        d.done, d.bye_done = loop.create_future(), loop.create_future()
        self.callers[d.call_id] = d
        d.invite = self._request("INVITE", d, 1, _sdp(d.leg.host, d.leg.port))
        t0 = time.monotonic()
        self.unacked["inv:" + d.call_id] = (d.invite, self.target, t0 + 0.5)
        self.uac.send(d.invite, self.target)
        try:
            status = await asyncio.wait_for(asyncio.shield(d.done), wait_s)
        except TimeoutError:
            status = 0
        self.unacked.pop("inv:" + d.call_id, None)
        d.status = status
        if 200 <= status < 300:
            d.setup_s = time.monotonic() - t0
        return d

    def _uac_message(self, text: str, addr: tuple[str, int]) -> None:
        first, hdrs, body = _headers(text)
        call_id = (_get(hdrs, "call-id", "i") or [""])[0]
        d = self.callers.get(call_id)
        if d is None:
            return
        if not first.startswith("SIP/2.0"):
            self._answer_in_dialog(self.uac, first, hdrs, body, addr, d.leg, self.uac_port)
            return
        status = int(first.split(" ", 2)[1])
        cseq = (_get(hdrs, "cseq") or [""])[0]
        if cseq.endswith("BYE"):
            if status >= 200 and d.bye_done is not None and not d.bye_done.done():
                d.bye_done.set_result(status)
            return
        if status < 200:
            self.unacked.pop("inv:" + call_id, None)  # provisional: stop timer A
            return
        to = (_get(hdrs, "to", "t") or [""])[0]
        tag = re.search(r";\s*tag=([^;>\s]+)", to)
        d.remote_tag = tag.group(1) if tag else ""
        if status >= 300:  # ACK on the INVITE's branch (RFC 3261 §17.1.1.3)
            via = next(ln for ln in d.invite.split("\r\n") if ln.startswith("Via:"))
            ack = (f"ACK {d.uri} SIP/2.0\r\n{via}\r\n"
                   f"From: <sip:bench@{self.caller_host}:{self.uac_port}>;tag={d.tag}\r\n"
                   f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
                   "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
            self.uac.send(ack, addr)
        else:
            contact = (_get(hdrs, "contact", "m") or [""])[0]
            m = re.search(r"<([^>]+)>", contact)
            d.target = m.group(1) if m else contact.split(";")[0]
            rr = [x.strip() for v in _get(hdrs, "record-route") for x in v.split(",")]
            d.route = list(reversed(rr))
            self._aim(d.leg, _media(body) or d.leg.dest)
            ack = self._request("ACK", d, 1)
            self.uac.send(ack, _hop(d.route[0] if d.route else d.target, addr))
        if d.done is not None and not d.done.done():
            d.done.set_result(status)

    async def bye(self, d: CallerDialog, wait_s: float = 8.0) -> int:
        """Hang up an answered call; 0 when no final answer came."""
        self._aim(d.leg, None)
        d.cseq += 1
        msg = self._request("BYE", d, d.cseq)
        hop = _hop(d.route[0] if d.route else d.target, self.target)
        self.unacked["bye:" + d.call_id] = (msg, hop, time.monotonic() + 0.5)
        self.uac.send(msg, hop)
        assert d.bye_done is not None
        try:
            return await asyncio.wait_for(asyncio.shield(d.bye_done), wait_s)
        except TimeoutError:
            return 0
        finally:
            self.unacked.pop("bye:" + d.call_id, None)
            self._drop(d)

    def _drop(self, d: CallerDialog) -> None:
        self.callers.pop(d.call_id, None)
        self._close_leg(d.leg)

    async def _resend(self) -> None:
        """Timers A/E (requests) and G (a 200 until its ACK), at a flat 0.5 s."""
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for key, (msg, addr, at) in list(self.unacked.items()):
                if at <= now:
                    (self.uas if key.startswith("200:") else self.uac).send(msg, addr)
                    self.unacked[key] = (msg, addr, now + 0.5)

    # --- SIP: the callee ----------------------------------------------------------

    def _reply(self, hdrs: list[tuple[str, str]], status: str, extra: list[str],
               body: str = "", to_tag: str = "") -> str:  # fmt: skip
        to = (_get(hdrs, "to", "t") or [""])[0]
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {status}"]
        lines += [f"Via: {v}" for v in _get(hdrs, "via", "v")]
        lines += [f"Record-Route: {v}" for v in _get(hdrs, "record-route")]
        lines += [f"From: {(_get(hdrs, 'from', 'f') or [''])[0]}", f"To: {to}"]
        lines += [f"Call-ID: {(_get(hdrs, 'call-id', 'i') or [''])[0]}"]
        lines += [f"CSeq: {(_get(hdrs, 'cseq') or [''])[0]}", *extra]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def _answer_in_dialog(self, sip: _Sip, first: str, hdrs: list[tuple[str, str]], body: str,
                          addr: tuple[str, int], leg: Leg, port: int) -> str:  # fmt: skip
        method = first.split(" ", 1)[0]
        if method == "ACK":
            return method
        contact = [f"Contact: <sip:bench@{leg.host}:{port}>"]
        if method in ("INVITE", "UPDATE"):
            self._aim(leg, _media(body) or leg.dest)  # the new offer: where it now sends
            sip.send(self._reply(hdrs, "200 OK", contact, _sdp(leg.host, leg.port, 2)), addr)
        else:  # BYE, OPTIONS, INFO ...
            sip.send(self._reply(hdrs, "200 OK", contact), addr)
        return method

    def _uas_message(self, text: str, addr: tuple[str, int]) -> None:
        first, hdrs, body = _headers(text)
        if first.startswith("SIP/2.0"):
            return
        call_id = (_get(hdrs, "call-id", "i") or [""])[0]
        method = first.split(" ", 1)[0]
        known = self.callees.get(call_id)
        to_tagged = ";tag=" in (_get(hdrs, "to", "t") or [""])[0]
        if method == "INVITE" and not to_tagged:
            if known is not None:  # a retransmission: the same 200 again
                self.uas.send(known[1], addr)
                return
            # A short call reaches the callee as the called number (a proxy) or as the
            # plan's device user "short" (a worker).
            ruri_user = first.split(" ", 2)[1].removeprefix("sip:").split("@")[0]
            short = ruri_user in (self.short_user, SHORT_DEVICE) and self.short_user != self.user
            leg = self._new_leg(BACK, rtp=not short)
            self._aim(leg, _media(body))
            tag = "c" + os.urandom(4).hex()
            contact = [f"Contact: <sip:uas@127.0.0.1:{self.uas_port}>"]
            self.uas.send(self._reply(hdrs, "180 Ringing", contact, to_tag=tag), addr)
            ok = self._reply(hdrs, "200 OK", contact, _sdp(leg.host, leg.port), to_tag=tag)
            self.callees[call_id] = (leg, ok)
            self.uas.send(ok, addr)
            self.unacked["200:" + call_id] = (ok, addr, time.monotonic() + 0.5)
            return
        if known is None:
            if method != "ACK":
                self.uas.send(self._reply(hdrs, "481 Call Does Not Exist", []), addr)
            return
        leg = known[0]
        if method == "ACK":
            self.unacked.pop("200:" + call_id, None)
        done = self._answer_in_dialog(self.uas, first, hdrs, body, addr, leg, self.uas_port)
        if done == "BYE":
            self.unacked.pop("200:" + call_id, None)
            self.callees.pop(call_id, None)
            self._close_leg(leg)

    # --- many calls -------------------------------------------------------------

    async def place(self, calls: int, rate: float) -> list[CallerDialog]:
        """``calls`` held calls placed at ``rate`` per second; returns those answered."""
        tasks = []
        for _ in range(calls):
            tasks.append(asyncio.create_task(self.call()))
            await asyncio.sleep(1 / rate)
        placed = await asyncio.gather(*tasks)
        for d in placed:
            if d.setup_s is None:
                self._drop(d)
        return [d for d in placed if d.setup_s is not None]

    async def short_calls(self, rate: float, until: float, hold: float = 0.5) -> dict[str, Any]:
        """New calls at ``rate``/s until ``until`` (loop time), each held ``hold`` s, no RTP."""
        loop = asyncio.get_running_loop()
        results: list[tuple[float | None, int]] = []
        why: dict[str, int] = {}  # failures by INVITE status ("timeout": none) or "BYE <status>"

        async def one() -> None:
            d = await self.call(short=True)
            if d.setup_s is None:
                results.append((None, 0))
                reason = str(d.status) if d.status else "timeout"
                why[reason] = why.get(reason, 0) + 1
                self._drop(d)
                return
            await asyncio.sleep(hold)
            bye = await self.bye(d)
            results.append((d.setup_s, bye))
            if bye != 200:
                why[f"BYE {bye}"] = why.get(f"BYE {bye}", 0) + 1

        tasks = []
        while loop.time() < until:
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
        setups = [s for s, _ in results if s is not None]
        failed = sum(1 for s, bye in results if s is None or bye != 200)
        return {"placed": len(results), "failed": failed, "failed_by": why,
                "setup_ms": summarize_ms(setups)}  # fmt: skip
