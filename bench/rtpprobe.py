"""RTP probe for bench/call_delay.py: sends or receives 20 ms PCMU frames, mostly silence
with one loud frame every 500 ms, and writes the loud frames' times (CLOCK_MONOTONIC, the
same clock in every network namespace of the host) as JSON.

    python -m bench.rtpprobe send BIND_IP:PORT TARGET_IP:PORT SECONDS OUT.json
    python -m bench.rtpprobe recv BIND_IP:PORT SECONDS OUT.json

A loud frame survives decoding and re-encoding (the worker's pjsua bridge transcodes
PCMU ↔ linear), a time stamp in the payload would not: the receiver finds a loud frame
by its energy. Silence is 0xFF (μ-law 0), a loud frame a 1 kHz square wave at full scale.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from pathlib import Path

SILENCE = b"\xff" * 160
LOUD = (b"\x00" * 4 + b"\x80" * 4) * 20  # μ-law ±full scale, 1 kHz at 8 kHz
EVERY = 25  # one loud frame per 25 frames (500 ms)


def loud(payload: bytes) -> bool:
    """Most samples near full scale (μ-law: the low 7 bits of the inverted byte large)."""
    return sum(1 for b in payload if (b & 0x7F) < 0x30) > len(payload) // 2


def address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def send(bind: str, target: str, seconds: float, out: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(address(bind))
    dest = address(target)
    sent: list[int] = []
    start = time.monotonic_ns()
    seq = 0
    while time.monotonic_ns() - start < seconds * 1e9:
        due = start + seq * 20_000_000
        while (now := time.monotonic_ns()) < due:
            time.sleep(max(0.0, (due - now) / 1e9 - 0.0005))
        is_loud = seq % EVERY == EVERY - 1
        header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 0x5EED)
        stamp = time.monotonic_ns()
        sock.sendto(header + (LOUD if is_loud else SILENCE), dest)
        if is_loud:
            sent.append(stamp)
        seq += 1
    out.write_text(json.dumps({"loud": sent, "frames": seq}))


def recv(bind: str, seconds: float, out: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(address(bind))
    sock.settimeout(0.2)
    arrived: list[int] = []
    frames = 0
    end = time.monotonic_ns() + seconds * 1e9
    while time.monotonic_ns() < end:
        try:
            data = sock.recv(2048)
        except TimeoutError:
            continue
        at = time.monotonic_ns()
        frames += 1
        if len(data) > 12 and loud(data[12:]):
            arrived.append(at)
    out.write_text(json.dumps({"loud": arrived, "frames": frames}))


def delays_ms(sent: list[int], arrived: list[int], window_ms: float = 400) -> list[float]:
    """For each loud frame sent, the first loud arrival within ``window_ms`` after it."""
    result: list[float] = []
    j = 0
    for s in sent:
        while j < len(arrived) and arrived[j] < s:
            j += 1
        if j < len(arrived) and arrived[j] - s < window_ms * 1e6:
            result.append((arrived[j] - s) / 1e6)
    return result


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "send":
        send(args[0], args[1], float(args[2]), Path(args[3]))
    elif mode == "recv":
        recv(args[0], float(args[1]), Path(args[2]))
    else:
        raise SystemExit(__doc__)
