"""bench/records_backends.py runs and prints both backends side by side (tiny sizes)."""

from __future__ import annotations

import concurrent.futures

import pytest

from bench import records_backends
from tests.helpers.pg import reachable, run_sync


@pytest.mark.peer
def test_records_backends_benchmark_prints_both(capsys: pytest.CaptureFixture[str]) -> None:
    why = run_sync(reachable())
    if why:
        pytest.skip(why)
    args = ["--calls", "50", "--paced-calls", "20", "--rate", "200", "--rounds", "1", "--no-save"]
    # On a thread: asyncio.run on the main thread would orphan pytest-asyncio's loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(records_backends.main, args).result() == 0
    out = capsys.readouterr().out
    assert "| figure | SQLite | PostgreSQL |" in out
    line = next(x for x in out.splitlines() if x.startswith("| records written per second"))
    sqlite, pg = (float(cell) for cell in line.strip("|").split("|")[1:])
    assert sqlite > 0
    assert pg > 0
    assert "| records spooled | 0 | 0 |" in out
