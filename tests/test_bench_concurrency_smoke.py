"""bench/concurrency.py: its delay histogram, and a tiny run that prints both rows."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from bench.rtpload import Direction
from tests.helpers.processes import REPO, run_ok


def test_direction_counts_loss_per_call_and_reads_quantiles_from_the_histogram() -> None:
    way = Direction()
    for _ in range(10):
        way.sent_by(1)
        way.sent_by(2)
    for k in range(10):
        way.add(0.0001 * (k + 1), 1)  # 0.1 .. 1.0 ms
    for _ in range(7):
        way.add(0.0005, 2)
    out = way.summary()
    assert (out["sent"], out["received"], out["lost"]) == (20, 17, 3)
    assert out["calls_with_loss"] == 1
    assert out["most_lost_in_one_call"] == 3
    assert out["p50_ms"] == pytest.approx(0.505, abs=0.011)
    assert out["p99_ms"] == pytest.approx(1.0, abs=0.011)
    assert out["max_ms"] == 1.0


@pytest.mark.peer
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="a private network namespace needs root")
@pytest.mark.skipif(
    not (shutil.which("kamailio") and shutil.which("rtpengine")), reason="needs the peers"
)
def test_tiny_concurrency_run_prints_both_rows() -> None:
    args = ["--calls", "2", "--seconds", "2", "--short-rate", "2", "--spare-workers", "1"]
    out = run_ok([sys.executable, "-m", "bench", "concurrency", "--", *args], cwd=REPO, timeout=110)
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert [line.split("|")[2].strip() for line in rows] == ["rtpengine", "switch"]
    for line in rows:
        assert line.split("|")[3].strip() == "2/2"  # both calls held
        assert "rtpengine" in line.split("|")[10]  # CPU of the relay reported
