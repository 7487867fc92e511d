"""The test tooling itself: an asynchronous test followed by a synchronous one that calls
``asyncio.run`` (our CLI tests do, through click's CliRunner) must leave no event loop
unclosed. pytest-asyncio 1.3.0 did: the collector later found the loop in whichever test
ran then, and under ``filterwarnings = error`` that test failed with "unraisable exception
warnings" (CI, 2026-12-03, in tests/switch/records/test_ownership.py). Fixed in 1.4."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUITE = """
import asyncio, gc

async def test_async_first():
    await asyncio.sleep(0)

def test_sync_runs_asyncio_run():
    async def amain():
        pass
    asyncio.run(amain())
    gc.collect()

def test_after():
    gc.collect()
"""

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def test_asyncio_run_after_an_async_test_leaves_no_loop_unclosed(tmp_path: Path) -> None:
    (tmp_path / "test_loops.py").write_text(SUITE, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text(INI, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout, run.stdout[-2000:]
