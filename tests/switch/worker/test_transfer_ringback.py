"""While a transfer target rings, the caller hears the 425 Hz ringback, not silence.

A worker without media services (no data directory: no prompts), a SIPp caller whose RTP
port is a socket of this test, a SIPp assistant that REFERs it to jan.desk, and a SIPp desk
phone that rings 3 s before it answers. Nobody sends audio but the switch, so every
non-silent packet the caller gets is the switch's ringback.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.rtp import RtpSink, tone_packets
from tests.helpers.sipp import Sipp
from tests.helpers.transfer import (
    BUSINESS_E164,
    CALLER,
    mueller_worker,
    sipp,
    transferor,
)
from tests.helpers.worker import completed_call

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(60)]


def crossings(samples: list[int]) -> int:
    return sum(1 for a, b in pairwise(samples) if (a < 0) != (b < 0))


def test_the_caller_hears_ringback_while_the_target_rings(tmp_path: Path) -> None:
    assistant = transferor(tmp_path, "jan.desk")
    desk = sipp(tmp_path, "desk", "uas_ring_answer.xml")
    worker = mueller_worker(tmp_path, desk, assistant)
    sink = RtpSink()
    call = Sipp(
        tmp_path,
        "caller",
        "uac_call_listen.xml",
        [
            f"{LOOPBACK}:{worker.port}",
            *("-s", BUSINESS_E164, "-key", "caller", CALLER),
            *("-key", "rtp_port", str(sink.port)),
            *("-m", "1", "-d", "6000", "-timeout", "25", "-timeout_error"),
        ],
    )
    try:
        with completed_call(worker, call, assistant, desk, timeout=25):
            record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")
    finally:
        sink.close()
    record = record["record"]
    assert record["transferred_to"] == "jan.desk"
    assert record["transfer_outcome"] == "answered"
    tone = tone_packets(sink)
    # The desk rang 3 s: the first second of the cadence (50 packets of 20 ms) at least.
    assert len(tone) >= 40, (len(tone), len(sink.packets))
    # 425 Hz: 8.5 periods, about 17 zero crossings in 160 samples (20 ms).
    per_packet = sum(crossings(samples) for samples in tone) / len(tone)
    assert 14 <= per_packet <= 20, per_packet
    print(f"ringback: {len(tone)} tone packets of {len(sink.packets)}, {per_packet:.1f} crossings")
