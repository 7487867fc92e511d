"""Tests that need ../shared/ data skip, with the reason, in a clone that has none."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.helpers.processes import run_ok

REPO = Path(__file__).resolve().parents[3]


def test_torture_skips_with_a_clear_reason_without_shared_data(tmp_path: Path) -> None:
    missing = tmp_path / "no-shared"
    result = run_ok(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q"),
            "tests/switch/edge/test_torture.py",
        ],
        cwd=REPO,
        env={**os.environ, "RUFWEICHE_SHARED": str(missing)},
        timeout=120,
    )
    assert "1 skipped" in result
    assert (
        f"RFC 4475 torture messages not found: {missing / 'testdata' / 'rfc4475'} is missing"
        in result
    )
