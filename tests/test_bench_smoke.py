"""The benchmarks run and report figures (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import decide as bench_decide


def test_decide_benchmark_produces_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = bench_decide.run(calls=300, loads=1, seed=3, out=tmp_path, seats=60, home_office=30)
    written = json.loads(Path(report["file"]).read_text(encoding="utf-8"))
    assert Path(report["file"]).parent == tmp_path
    assert written["municipal_plan"]["people"] == 60
    assert [row["name"] for row in written["decide"]] == [
        "floor (dict lookup + Decision)",
        "decide, craftsman plan",
        "decide, municipal plan",
    ]
    for row in written["decide"]:
        assert row["count"] == 300
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
    assert written["municipal_plan"]["load_median_s"] > 0
    assert written["machine"]["python"]
    out = capsys.readouterr().out
    assert "decide p99" in out


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert bench_decide.percentile(values, 0.5) == 50
    assert bench_decide.percentile(values, 0.99) == 99
    assert bench_decide.percentile(values, 1.0) == 100
    assert bench_decide.percentile([7], 0.99) == 7


def test_bench_entry_lists_and_rejects(capsys: pytest.CaptureFixture[str]) -> None:
    assert "decide" in bench_main.available()
    assert "gen_municipality" not in bench_main.available()
    assert "__main__" not in bench_main.available()
    assert bench_main.run(["--list"]) == 0
    assert "decide" in capsys.readouterr().out
    assert bench_main.run(["nonesuch"]) == 2
    assert "unknown benchmark 'nonesuch'" in capsys.readouterr().out


def test_bench_entry_runs_a_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--calls", "50", "--loads", "1", "--seats", "20", "--home-office", "5", "--no-write"]
    assert bench_main.run(["decide", "--", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== decide\n")
    assert "municipal plan: 20 people, 21 numbers" in out


def test_windows_find_the_quiet_stretch() -> None:
    noisy = [1000] * 1000 + [50_000] * 40 + [1000] * 960  # one noisy stretch in ten
    item = bench_decide.figures("x", noisy)
    assert item.p99_us == 50.0
    assert item.p99_best_window_us == 1.0
    assert item.p99_median_window_us == 1.0
    assert bench_decide.figures("y", [5, 7]).p99_best_window_us == 0.007
