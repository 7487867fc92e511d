"""bench/records_backends.py runs and prints both backends side by side (tiny sizes)."""

from __future__ import annotations

import asyncio

import pytest

from bench import records_backends
from tests.switch.records.pg import reachable


@pytest.mark.peer
def test_records_backends_benchmark_prints_both(capsys: pytest.CaptureFixture[str]) -> None:
    why = asyncio.run(reachable())
    if why:
        pytest.skip(why)
    args = ["--calls", "50", "--paced-calls", "20", "--rate", "200", "--rounds", "1", "--no-save"]
    assert records_backends.main(args) == 0
    out = capsys.readouterr().out
    assert "| figure | SQLite | PostgreSQL |" in out
    line = next(x for x in out.splitlines() if x.startswith("| records written per second"))
    sqlite, pg = (float(cell) for cell in line.strip("|").split("|")[1:])
    assert sqlite > 0
    assert pg > 0
    assert "| records spooled | 0 | 0 |" in out
