"""Media services against real peers: SIPp callers hear announcements, leave voicemail.

The worker (``python -m switch.worker --data-dir``) runs with a dial plan in tmp_path.
Prompts are made in advance with :class:`switch.announcements.Announcements` in the
worker's data dir (the cache the worker reads), so the first call finds them ready.
Audio is checked on the wire: a test-owned UDP socket is the caller's RTP address and
decodes what arrives (G.711 A-law, by table: no audioop, no numpy).
"""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from switch.announcements import Announcements, wav_seconds
from tests.sip_peers import LOOPBACK, Sipp, WorkerProcess, running, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

BUSINESS = "+49 30 1234560"
BUSINESS_E164 = "+49301234560"
CALLER = "+491715550100"
CLOSED_TEXT = "Wir haben Betriebsferien."


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


def plan(tmp_path: Path, then: str, devices: str = '{desk: "sip:201@127.0.0.1:9"}') -> Path:
    return write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: test-tenant
name: Test
numbers: ["{BUSINESS}"]
people:
  jan:
    name: Jan
    devices: {devices}
rules:
  - name: closed
    then:
{then}
""",
    )


def make_prompts(data_dir: Path, *texts: str) -> dict[str, float]:
    ann = Announcements(data_dir)
    return {text: wav_seconds(ann.synthesize("de", text)) for text in texts}


def caller(tmp_path: Path, worker: WorkerProcess, scenario: str, *extra: str) -> Sipp:
    return Sipp(
        tmp_path,
        "caller",
        scenario,
        [
            f"{LOOPBACK}:{worker.port}",
            "-s",
            BUSINESS_E164,
            "-key",
            "caller",
            CALLER,
            "-m",
            "1",
            "-timeout",
            "30",
            "-timeout_error",
            *extra,
        ],
    )


def test_announcement_is_played_then_the_switch_hangs_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    seconds = make_prompts(data_dir, CLOSED_TEXT)[CLOSED_TEXT]
    dialplan = plan(tmp_path, f'      - {{announcement: "{CLOSED_TEXT}"}}')
    worker = WorkerProcess(tmp_path, [dialplan], extra=["--data-dir", str(data_dir)])
    sink = RtpSink()
    call = caller(tmp_path, worker, "uac_media_listen.xml", "-key", "rtp_port", str(sink.port))
    try:
        with running(worker, call):
            worker.start()
            call.start()
            assert call.wait(20) == 0, call.diagnostics()
            record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")
    finally:
        sink.close()
    assert "GOT BYE" in call.log_lines()
    record = record["record"]
    assert record["outcome"] == "missed"
    assert record["hung_up_by"] == "switch"
    assert record["sip_status"] == 200
    # The prompt went out as PCMA, about as long as the file, and is not silence.
    assert sink.packets, "no RTP reached the caller"
    span = sink.packets[-1][0] - sink.packets[0][0]
    assert seconds - 0.3 < span < seconds + 1.5, (span, seconds)
    audio = sink.samples()
    assert len(audio) / 8000 == pytest.approx(seconds, abs=1.0)
    assert rms(audio) > 300
