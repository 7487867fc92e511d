"""RTP by hand: a UDP socket standing in for a caller's RTP port, and G.711 A-law decoding.

Audio is checked on the wire: :class:`RtpSink` keeps what arrives, :data:`ALAW` decodes it
by table (no audioop, no numpy) and :func:`rms` says how loud it was.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass, field

from tests.helpers.ports import LOOPBACK


def alaw_to_linear(byte: int) -> int:
    """ITU-T G.711 A-law to 16-bit linear (the inverse of the encoder's segment table)."""
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


ALAW = [alaw_to_linear(b) for b in range(256)]


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


@dataclass
class RtpSink:
    """A UDP socket standing in for the caller's RTP port; keeps (arrival, payload)."""

    sock: socket.socket = field(
        default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    )
    packets: list[tuple[float, int, bytes]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) > 12 and data[0] >> 6 == 2:  # RTP version 2 (RFC 3550 §5.1)
                self.packets.append((time.monotonic(), data[1] & 0x7F, data[12:]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()

    def samples(self) -> list[int]:
        return [ALAW[b] for _, pt, payload in self.packets if pt == 8 for b in payload]


def tone_packets(sink: RtpSink, threshold: float = 300.0) -> list[list[int]]:
    """The A-law packets that reached ``sink`` louder than ``threshold``, as samples."""
    decoded = ([ALAW[b] for b in payload] for _, pt, payload in sink.packets if pt == 8)
    return [samples for samples in decoded if rms(samples) > threshold]
