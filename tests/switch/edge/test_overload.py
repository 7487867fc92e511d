"""An overload step at the edge in front of 8 workers: the excess gets 503 from the edge
and the pool takes calls again within seconds (docs/performance.md "Edge stuck after
overload", issue 8). The same rows and SIPp runs as bench/sipbench.py, which found it."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest

from bench import sipbench

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(150),
]

# The bench's full plan: 4 s steps of 100 ms calls; a probe is 2 calls that each must be
# answered within 2 s. Recovery is allowed 8 s here (the bench allows 20 s).
PLAN = dataclasses.replace(sipbench.FULL, recovery_limit_s=8.0, pause_between_steps=0.0)


def test_the_pool_recovers_within_seconds_after_overload_steps(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        results: dict[str, dict[str, object]] = {}
        rows = sipbench.open_rows(["edge_pool"], tmp_path, stack, results)
        if "skipped" in results["edge_pool"]:
            pytest.skip(f"the edge_pool row cannot start here: {results['edge_pool']['skipped']}")
        # A row that exists but does not start is a failure with its reason, not a skip.
        assert "edge_pool" in rows, (
            f"the edge_pool row did not start: {results['edge_pool']}\n{log_tails(tmp_path)}"
        )
        row = rows["edge_pool"]
        assert sipbench.run_step(row, PLAN, 50, "warm")["target_alive"]
        # Two overload steps: a single one left the edge stuck in about half the runs.
        for attempt in range(2):
            step = sipbench.run_step(row, PLAN, 100, f"over{attempt}")
            assert step["target_alive"], f"a process of the row died: {step.get('crash')}"
            assert step["failed"] > 0, "the step was above capacity"
            # The excess is refused (SIPp counts the edge's 503 as an unexpected message).
            assert set(step["failed_reasons"]) == {"UnexpectedMessage"}, step["failed_reasons"]
            recovery = sipbench.wait_recovered(row, PLAN)
            print(f"overload step {attempt}: recovered after {recovery} s")
            assert recovery is not None, f"edge stuck after overload step {attempt}"
        # Not asserted yet: a 10 calls/s step right after recovery still gets a few 503s
        # in some runs (workers still hold calls that never got a final reply).
        after = sipbench.run_step(row, PLAN, 10, "after")
        assert after["target_alive"], after
        assert after["successful"] > 0, after


def log_tails(workdir: Path, lines: int = 5) -> str:
    """The last lines of every worker's log of the row, for a start that failed."""
    tails = []
    for log in sorted(workdir.rglob("*.log")):
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        tails.append(f"--- {log.name}\n" + "\n".join(text))
    return "\n".join(tails)
