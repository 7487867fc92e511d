"""The SIP benchmark harness: its pure parts, and a tiny real run against SIPp and Kamailio."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from bench import media, sipbench, wire
from bench.targets import worker_available
from tests.helpers.sipp import parse_stat_csv


def _sip_frame(src: int, dst: int, first: str, call_id: str, cseq: str) -> bytes:
    payload = f"{first}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n\r\n".encode()
    udp = struct.pack("!HHHH", src, dst, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1"
    )
    return b"\0" * 14 + ip + udp


def _pcap(path: Path, frames: list[tuple[float, bytes]]) -> None:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for t, frame in frames:
        sec, usec = int(t), round((t - int(t)) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    path.write_bytes(out)


def test_call_timings_from_a_pcap_match_b2bua_legs_in_order(tmp_path: Path) -> None:
    caller, callee, b2bua = 5001, 5002, 5003
    frames = [
        (100.000000, _sip_frame(caller, b2bua, "INVITE sip:x@h SIP/2.0", "a1", "1 INVITE")),
        (100.000500, _sip_frame(b2bua, callee, "INVITE sip:y@h SIP/2.0", "b1", "1 INVITE")),
        (100.001000, _sip_frame(b2bua, caller, "SIP/2.0 180 Ringing", "a1", "1 INVITE")),
        (100.002000, _sip_frame(b2bua, caller, "SIP/2.0 200 OK", "a1", "1 INVITE")),
        (100.050000, _sip_frame(caller, b2bua, "INVITE sip:x@h SIP/2.0", "a2", "1 INVITE")),
        (100.050800, _sip_frame(b2bua, callee, "INVITE sip:y@h SIP/2.0", "b2", "1 INVITE")),
        (100.053000, _sip_frame(b2bua, caller, "SIP/2.0 200 OK", "a2", "1 INVITE")),
        (100.060000, _sip_frame(b2bua, caller, "SIP/2.0 200 OK", "a1", "2 BYE")),
    ]
    path = tmp_path / "x.pcap"
    _pcap(path, frames)
    timings = wire.call_timings(wire.sip_packets(path), caller=caller, callee=callee)
    assert [t.call_id for t in timings] == ["a1", "a2"]
    assert timings[0].ringing == pytest.approx(0.001, abs=2e-6)
    assert timings[0].answer == pytest.approx(0.002, abs=2e-6)
    assert timings[0].forward == pytest.approx(0.0005, abs=2e-6)
    assert timings[1].ringing is None
    assert timings[1].answer == pytest.approx(0.003, abs=2e-6)
    assert timings[1].forward == pytest.approx(0.0008, abs=2e-6)


def test_percentile_interpolates_between_ranks() -> None:
    assert wire.percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert wire.percentile([5.0], 99) == 5.0
    assert wire.summarize_ms([0.001, 0.002]) == {
        "n": 2, "p50": 1.5, "p90": 1.9, "p99": 1.99, "max": 2.0, "mean": 1.5,
    }  # fmt: skip
    with pytest.raises(ValueError, match="no values"):
        wire.percentile([], 50)


def test_ulaw_round_trip_is_close() -> None:
    for x in (0, 1, 100, 1000, 8000, -8000, 12000, -32000):
        assert abs(media.ulaw_decode(media.ulaw_encode(x)) - x) <= max(4, abs(x) // 16)


def test_burst_onset_delay_and_loss_from_received_audio() -> None:
    # 20 packets sent 20 ms apart; bursts start at packets 10 and 20 (the second is never heard).
    sent = {k: 1000.0 + 0.02 * k for k in range(21)}
    # Heard: the first burst arrives 30 ms late and starts 40 samples into its packet.
    quiet = media.Received(0, 1, media.SILENCE)
    tone = bytes(40 * [media.SILENCE[0]]) + media.TONE[:120]
    packets = [media.Received(1000.0 + 0.02 * k, k, media.SILENCE) for k in range(1, 10)] + [
        media.Received(sent[10] + 0.030 + 0.005, 10, tone),
        quiet,
    ]
    delays, n = media.match_bursts(sent, media.onsets(packets))
    assert n == 2
    assert len(delays) == 1
    # heard at arrival - 120 samples (15 ms); spoken at send - 20 ms: 35 - 15 + 20 = 40 ms
    assert delays[0] == pytest.approx(0.040, abs=1e-9)


def test_stat_csv_last_line_gives_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "StartTime;OutgoingCall(C);SuccessfulCall(C);FailedCall(C);FailedMaxUDPRetrans(C);"
        "Retransmissions(C);CurrentCall;\n"
        "2026-11-25\t02:00:00.0 1;5;5;0;0;0;0;\n"
        "2026-11-25\t02:00:01.0 1;10;8;2;2;3;0;\n"
    )
    stats = parse_stat_csv(path)
    assert (stats.outgoing, stats.successful, stats.failed, stats.retransmissions) == (10, 8, 2, 3)
    assert stats.failed_reasons == {"MaxUDPRetrans": 2}


def _worker_landed() -> bool:
    """switch/worker/loop.py exists and is committed (not a colleague's work in progress)."""
    if not worker_available():
        return False
    root = Path(__file__).resolve().parent.parent
    tracked = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--error-unmatch", "switch/worker/loop.py"],
        capture_output=True,
        check=False,
    )
    return tracked.returncode == 0 or not (root / ".git").exists()


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("sipp") and shutil.which("kamailio") and shutil.which("dumpcap")),
    reason="needs sipp, kamailio and dumpcap (make peers)",
)
def test_quick_run_produces_figures_for_every_row(tmp_path: Path) -> None:
    rows = ["direct", "kamailio"] + (["worker"] if _worker_landed() else [])
    doc = tmp_path / "performance.md"
    report = sipbench.run(rows, quick=True, out_dir=tmp_path, doc=doc)
    saved = json.loads((tmp_path / report["file"]).read_text())
    for name in rows:
        row = saved["rows"][name]
        lat = row["latency"]
        assert lat["invite_180_ms"]["n"] >= 1, (name, row)
        assert lat["invite_200_ms"]["p99"] > 0, (name, row)
        assert row["rate_search"]["steps"], (name, row)
    assert saved["rows"]["kamailio"]["latency"]["invite_out_ms"]["p50"] > 0
    assert saved["rows"]["direct"]["media"]["bursts_heard"] >= 1
    assert saved["machine"]["nproc"] >= 1
    assert "| kamailio |" in doc.read_text()
