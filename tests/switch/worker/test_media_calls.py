"""Media services against real peers: SIPp callers hear announcements, leave voicemail.

The worker (``python -m switch.worker --data-dir``) runs with a dial plan in tmp_path.
Prompts are made in advance with :class:`switch.worker.announcements.Announcements` in the
worker's data dir (the cache the worker reads), so the first call finds them ready.
Audio is checked on the wire: a test-owned UDP socket is the caller's RTP address and
decodes what arrives (G.711 A-law, by table: no audioop, no numpy).
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from switch.call.prompts import prompt_texts
from tests.helpers.processes import running
from tests.helpers.rtp import ALAW, RtpSink, rms
from tests.helpers.sipp import BUSINESS, CALLER, PCAP, Sipp, caller, stage_pcap
from tests.helpers.worker import WorkerProcess, ended, make_prompts, start_call, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

CLOSED_TEXT = "Wir haben Betriebsferien."


def plan(
    tmp_path: Path, then: str, devices: str = '{desk: "sip:201@127.0.0.1:9"}', media: str = ""
) -> Path:
    return write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: test-tenant
name: Test
numbers: ["{BUSINESS}"]
{f"media: {media}" if media else ""}
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


def media_worker(tmp_path: Path, dialplan: Path) -> WorkerProcess:
    """The worker on ``dialplan`` with the prompts made in ``tmp_path/var``."""
    return WorkerProcess(tmp_path, [dialplan], extra=["--data-dir", str(tmp_path / "var")])


@contextlib.contextmanager
def listening_call(
    tmp_path: Path, worker: WorkerProcess, *callees: Sipp
) -> Iterator[tuple[Sipp, RtpSink]]:
    """A SIPp caller that listens (its RTP goes to an :class:`RtpSink`), run to its end with
    the ``callees`` and the worker; the block runs while they still run."""
    sink = RtpSink()
    call = caller(tmp_path, worker.port, "uac_media_listen.xml", rtp_port=sink.port, timeout=30)
    try:
        with running(*callees, worker, call):
            start_call(worker, call, *callees)
            assert call.wait(20) == 0, call.diagnostics()
            yield call, sink
    finally:
        sink.close()


def test_announcement_is_played_then_the_switch_hangs_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    seconds = make_prompts(data_dir, CLOSED_TEXT)[CLOSED_TEXT]
    worker = media_worker(tmp_path, plan(tmp_path, f'      - {{announcement: "{CLOSED_TEXT}"}}'))
    with listening_call(tmp_path, worker) as (call, sink):
        record = worker.wait_for(ended)
    assert "GOT BYE" in call.log_lines()
    record = record["record"]
    assert record["outcome"] == "missed"
    assert record["hung_up_by"] == "switch"
    assert record["sip_status"] == 200
    assert record["final_action"] == "announcement"
    # The prompt went out as PCMA, about as long as the file, and is not silence.
    assert sink.packets, "no RTP reached the caller"
    span = sink.packets[-1][0] - sink.packets[0][0]
    assert seconds - 0.3 < span < seconds + 1.5, (span, seconds)
    audio = sink.samples()
    assert len(audio) / 8000 == pytest.approx(seconds, abs=1.0)
    assert rms(audio) > 300


# ------------------------------------------------------------------ voicemail


def pcap_alaw(path: Path) -> list[int]:
    """Linear samples of the RTP payloads in a pcap (Ethernet/IPv4/UDP/RTP, PCMA)."""
    data = path.read_bytes()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4, "little-endian pcap expected"
    offset = 24
    samples: list[int] = []
    while offset + 16 <= len(data):
        length = struct.unpack("<I", data[offset + 8 : offset + 12])[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        rtp = ip[(ip[0] & 0x0F) * 4 + 8 :]
        header = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[1] & 0x7F == 8:
            samples.extend(ALAW[b] for b in rtp[header:])
    return samples


def wav_samples(path: Path) -> list[int]:
    import array
    import wave

    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return list(array.array("h", wav.readframes(wav.getnframes())))


def envelope(samples: list[int], block: int = 160) -> list[float]:
    """Mean absolute level per 20 ms block: robust against jitter-buffer sample shifts."""
    return [
        sum(abs(s) for s in samples[i : i + block]) / block
        for i in range(0, len(samples) - block + 1, block)
    ]


def best_match(needle: list[float], haystack: list[float]) -> tuple[float, int]:
    """Highest Pearson correlation of ``needle`` against every offset into ``haystack``."""
    n = len(needle)
    mean_n = sum(needle) / n
    dn = [x - mean_n for x in needle]
    norm_n = math.sqrt(sum(x * x for x in dn))
    best = (-1.0, 0)
    for shift in range(-n // 4, max(1, len(haystack) - n + n // 4)):
        pairs = [(dn[i], haystack[i + shift]) for i in range(n) if 0 <= i + shift < len(haystack)]
        if len(pairs) < n * 3 // 4:
            continue
        hs = [h for _, h in pairs]
        mean_h = sum(hs) / len(hs)
        num = sum(d * (h - mean_h) for d, h in pairs)
        den = norm_n * math.sqrt(sum((h - mean_h) ** 2 for h in hs))
        if den and num / den > best[0]:
            best = (num / den, shift)
    return best


def test_caller_leaves_a_voicemail_that_holds_what_it_said(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    greeting = prompt_texts("Test")[0]
    seconds = make_prompts(data_dir, greeting)[greeting] + 0.3  # + the beep
    stage_pcap(tmp_path)
    worker = media_worker(tmp_path, plan(tmp_path, "      - voicemail"))
    wait_ms = int((seconds + 0.6) * 1000)  # speak only after the beep
    call = caller(tmp_path, worker.port, "uac_voicemail.xml", "-d", str(wait_ms), timeout=30)
    with running(worker, call):
        start_call(worker, call)
        assert call.wait(25) == 0, call.diagnostics()
        message = worker.wait_for(lambda m: m["op"] == "voicemail")
        record = worker.wait_for(ended)["record"]
    assert record["outcome"] == "missed"
    assert record["hung_up_by"] == "caller"
    assert record["final_action"] == "voicemail"
    path = Path(message["path"])
    assert path.parent == data_dir / "voicemail" / "test-tenant"
    assert message["caller"] == CALLER
    assert message["tenant"] == "test-tenant"
    assert path.is_file()
    recorded = wav_samples(path)
    played = pcap_alaw(PCAP)
    played_s, recorded_s = len(played) / 8000, len(recorded) / 8000
    assert message["seconds"] == pytest.approx(recorded_s, abs=0.05)
    # Recording runs from the beep's end to the BYE: the 7.05 s of audio plus the
    # ~0.6 s the caller waited and the pause before its BYE.
    assert played_s - 0.2 < recorded_s < played_s + 2.0, (played_s, recorded_s)
    assert rms(recorded) > 300
    score, shift = best_match(envelope(played), envelope(recorded))
    assert score > 0.8, (score, shift)


# ------------------------------------------------------------------ welcome (early media)


def test_welcome_is_early_media_before_the_first_step_rings(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    welcome = "Willkommen bei Test."
    seconds = make_prompts(data_dir, welcome)[welcome]
    callee = Sipp(tmp_path, "callee", "uas_answer_bye.xml", ["-m", "1", "-timeout", "20"])
    dialplan = plan(
        tmp_path,
        "      - {ring: jan.desk, timeout: 10s}",
        devices=f'{{desk: "sip:desk@{callee.address}"}}',
        media=f'{{welcome: "{welcome}"}}',
    )
    worker = media_worker(tmp_path, dialplan)
    with listening_call(tmp_path, worker, callee) as (call, sink):
        record = worker.wait_for(ended)
    record = record["record"]
    assert record["outcome"] == "answered"
    progress = call.received("SIP/2.0 183")
    assert progress, "no 183 with early media"
    assert "m=audio" in progress[0]
    # The target's INVITE left only once the welcome had been played.
    (leg,) = record["legs"]
    waited = (leg["invite_out_ns"] - record["invite_in_ns"]) / 1e9
    assert seconds - 0.2 < waited < seconds + 0.8, (waited, seconds)
    first = sink.packets[0][0]
    early = [payload for t, pt, payload in sink.packets if pt == 8 and t - first < seconds]
    assert len(early) > seconds * 40
    assert rms([ALAW[b] for payload in early for b in payload]) > 300


def test_voicemail_stops_at_its_longest_length(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    greeting = prompt_texts("Test")[0]
    make_prompts(data_dir, greeting)
    worker = media_worker(
        tmp_path, plan(tmp_path, "      - voicemail", media="{voicemail_max: 2s}")
    )
    with listening_call(tmp_path, worker) as (call, _):
        message = worker.wait_for(lambda m: m["op"] == "voicemail")
        record = worker.wait_for(ended)
    assert "GOT BYE" in call.log_lines()  # the switch ended the call
    assert record["record"]["hung_up_by"] == "switch"
    assert message["seconds"] == pytest.approx(2.0, abs=0.3)
    assert Path(message["path"]).is_file()
