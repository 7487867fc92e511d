"""bench/worker_memory.py: a tiny run prints the fork and spawn rows and the growth row."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from bench.worker_memory import render
from tests.helpers.processes import REPO, run_ok


def test_render_reports_growth_after_the_warm_up() -> None:
    row = {"mode": "fork", "workers": 2, "pss_mb_mean": 12.0, "zygote_pss_mb": 20.0,
           "pss_mb_per_worker_with_zygote": 22.0, "rss_mb_mean": 40.0,
           "idle_cpu_pct_per_worker": 0.2, "loadavg_start": (0.1,), "loadavg_end": (0.2,),
           "growth": [{"calls": 0, "ok": 0, "pss_mb_mean": 12.0},
                      {"calls": 1000, "ok": 1000, "pss_mb_mean": 14.0},
                      {"calls": 5000, "ok": 5000, "pss_mb_mean": 14.4},
                      {"calls": 10000, "ok": 10000, "pss_mb_mean": 14.9}]}  # fmt: skip
    text = render([row])
    assert "| 5000 (5000) | 14.4 | +0.100 |" in text
    assert "| 10000 (10000) | 14.9 | +0.100 |" in text
    assert "| 1000 (1000) | 14.0 | – |" in text


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("kamailio") and shutil.which("sipp")), reason="needs kamailio and sipp"
)
def test_tiny_worker_memory_run_prints_fork_spawn_and_growth() -> None:
    args = ["--workers", "2", "--idle", "2", "--calls", "60", "--rate", "10"]
    out = run_ok(
        [sys.executable, "-m", "bench", "worker_memory", "--", *args], cwd=REPO, timeout=110
    )
    rows = {m[0]: m for m in re.findall(r"^\| (spawn|fork) \| 2 \| ([\d.]+) \|", out, re.M)}
    assert set(rows) == {"spawn", "fork"}, out
    assert all(float(pss) > 1 for _, pss in rows.values()), out
    growth = re.findall(r"^\| (\d+) \((\d+)\) \|", out, re.M)
    assert [int(c) for c, _ in growth] == [0, 6, 30, 60], out
    assert int(growth[-1][1]) >= 54, "nearly every growth call completed: " + out
