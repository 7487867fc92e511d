"""Signalling delays from wire timestamps: a ``dumpcap`` capture on loopback, read here.

The kernel stamps each packet as it crosses ``lo``, so INVITE→180 measured at the
caller's port is what a caller would see, with microsecond resolution and without the
scheduling noise of the load generator (SIPp's own ``rtd`` has 1 ms resolution).
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import sipp
from bench.sipp import BenchError
from tests.helpers.processes import stop_process

# pcap link types we can meet on Linux loopback (DLT_*)
_LINK_HEADER = {0: 4, 1: 14, 113: 16, 276: 20}


@dataclass(frozen=True, slots=True)
class SipPacket:
    t: float  # seconds since the epoch, from the capture
    src: int  # UDP source port
    dst: int  # UDP destination port
    method: str | None  # request method, or None for a response
    status: int | None  # response status, or None for a request
    call_id: str
    cseq_method: str


@contextlib.contextmanager
def capture(path: Path, ports: list[int], snaplen: int = 2048) -> Iterator[Path]:
    """Capture UDP on ``lo`` to/from ``ports`` into ``path`` (pcap) while the block runs."""
    bpf = " or ".join(f"udp port {p}" for p in ports)
    path.unlink(missing_ok=True)
    cmd = ["dumpcap", "-q", "-i", "lo", "-f", bpf, "-s", str(snaplen), "-B", "64", "-P"]
    cmd += ["-w", str(path)]
    err = path.with_suffix(".dumpcap.log")
    with err.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            # dumpcap says "Capturing on ..." once the filter is in place.
            end = time.monotonic() + 10
            while b"Capturing on" not in err.read_bytes():
                if proc.poll() is not None or time.monotonic() > end:
                    raise BenchError(f"dumpcap did not start: {err.read_text()[-300:]!r}")
                time.sleep(0.02)
            time.sleep(0.05)
            yield path
            time.sleep(0.2)  # let the last packets reach the file
        finally:
            stop_process(proc, grace=5)


def read_pcap(path: Path) -> Iterator[tuple[float, bytes]]:
    """(timestamp, IPv4 packet) for each record of a classic pcap file."""
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise BenchError(f"{str(path)!r} is not a classic pcap file (magic {magic!r})")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    (linktype,) = struct.unpack(endian + "I", data[20:24])
    skip = _LINK_HEADER.get(linktype & 0x0FFFFFFF)
    if skip is None:
        raise BenchError(f"pcap link type {linktype!r} not supported")
    off = 24
    div = 1e9 if nano else 1e6
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        yield sec + frac / div, frame[skip:]


def _udp_payload(ip: bytes) -> tuple[int, int, bytes] | None:
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    ihl = (ip[0] & 0x0F) * 4
    src, dst = struct.unpack("!HH", ip[ihl : ihl + 4])
    return src, dst, ip[ihl + 8 :]


def _header(lines: list[bytes], *names: bytes) -> str:
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in names:
            return value.strip().decode(errors="replace")
    return ""


def parse_sip(t: float, ip: bytes) -> SipPacket | None:
    udp = _udp_payload(ip)
    if udp is None:
        return None
    src, dst, payload = udp
    head = payload.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    first = head[0].split(b" ")
    if len(first) < 3:
        return None
    call_id = _header(head[1:], b"call-id", b"i")
    cseq = _header(head[1:], b"cseq").split(" ")
    cseq_method = cseq[-1] if cseq else ""
    if first[0] == b"SIP/2.0":
        try:
            status = int(first[1])
        except ValueError:
            return None
        return SipPacket(t, src, dst, None, status, call_id, cseq_method)
    if first[-1] != b"SIP/2.0":
        return None
    return SipPacket(t, src, dst, first[0].decode(errors="replace"), None, call_id, cseq_method)


def sip_packets(path: Path) -> list[SipPacket]:
    out = []
    for t, ip in read_pcap(path):
        pkt = parse_sip(t, ip)
        if pkt is not None:
            out.append(pkt)
    return out


@dataclass(frozen=True)
class CallTiming:
    call_id: str
    invite: float  # the caller's first INVITE left
    ringing: float | None  # first 180 reached the caller, seconds after the INVITE
    answer: float | None  # first 200 to the INVITE reached the caller
    forward: float | None  # first INVITE reached the callee (None on the direct path)


def latencies_ms(timings: list[CallTiming]) -> dict[str, dict[str, float | int] | None]:
    """The summaries (:func:`summarize_ms`) of the calls' ``ringing``, ``answer`` and
    ``forward`` delays, each over the calls that have one."""
    return {
        name: summarize_ms([v for t in timings if (v := getattr(t, name)) is not None])
        for name in ("ringing", "answer", "forward")
    }


def call_timings(packets: list[SipPacket], caller: int, callee: int) -> list[CallTiming]:
    """Per call: delays seen at the caller's port, and INVITE in → INVITE out to the callee.

    Caller-side packets are matched by Call-ID. The outgoing INVITE of a B2BUA has a new
    Call-ID, so INVITEs reaching the callee are matched to the caller's INVITEs in
    arrival order (first come, first matched), which holds at moderate, failure-free rates.
    """
    first_invite: dict[str, float] = {}
    ringing: dict[str, float] = {}
    answer: dict[str, float] = {}
    out_invites: dict[str, float] = {}
    for p in packets:
        if p.method == "INVITE" and p.src == caller and p.call_id not in first_invite:
            first_invite[p.call_id] = p.t
        elif p.method == "INVITE" and p.dst == callee and p.src != caller:
            out_invites.setdefault(p.call_id, p.t)
        elif p.status is not None and p.dst == caller and p.cseq_method == "INVITE":
            if p.status == 180:
                ringing.setdefault(p.call_id, p.t)
            elif p.status == 200:
                answer.setdefault(p.call_id, p.t)
    # Forwarded INVITEs: same Call-ID (proxy) or arrival order (B2BUA).
    forward: dict[str, float] = {}
    unmatched = []
    for cid, t in out_invites.items():
        if cid in first_invite:
            forward[cid] = t
        else:
            unmatched.append(t)
    unmatched.sort()
    pending = sorted((t, cid) for cid, t in first_invite.items() if cid not in forward)
    i = 0
    for t_out in unmatched:
        if i < len(pending) and pending[i][0] <= t_out:
            forward[pending[i][1]] = t_out
            i += 1
    out = []
    for cid, t0 in sorted(first_invite.items(), key=lambda kv: kv[1]):
        out.append(
            CallTiming(
                call_id=cid,
                invite=t0,
                ringing=ringing[cid] - t0 if cid in ringing else None,
                answer=answer[cid] - t0 if cid in answer else None,
                forward=forward[cid] - t0 if cid in forward else None,
            )
        )
    return out


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), ``q`` in 0..100."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize_ms(values: list[float]) -> dict[str, float | int] | None:
    """p50/p90/p99/max in milliseconds of delays given in seconds."""
    if not values:
        return None
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 4),
        "p90": round(percentile(ms, 90), 4),
        "p99": round(percentile(ms, 99), 4),
        "max": round(max(ms), 4),
        "mean": round(sum(ms) / len(ms), 4),
    }


def captured_uac(
    workdir: Path, pcap: Path, *, target: str, service: str, uac_port: int, uas_port: int,
    calls: int, rate: float, hold_ms: int = 100,
) -> tuple[sipp.UacRun, list[CallTiming]]:  # fmt: skip
    """The SIPp caller's run against ``target`` with its SIP captured to ``pcap``, and the
    per-call wire timings between the caller (``uac_port``) and the callee (``uas_port``)."""
    with capture(pcap, [uac_port, uas_port]):
        run = sipp.run_uac(
            workdir, target=target, service=service, port=uac_port, calls=calls, rate=rate,
            hold_ms=hold_ms,
        )  # fmt: skip
    return run, call_timings(sip_packets(pcap), caller=uac_port, callee=uas_port)
