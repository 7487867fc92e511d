"""Tests that need ../shared/ data skip, with the reason, in a clone that has none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_torture_skips_with_a_clear_reason_without_shared_data(tmp_path: Path) -> None:
    missing = tmp_path / "no-shared"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q"),
            "tests/switch/edge/test_torture.py",
        ],
        cwd=REPO,
        env={**os.environ, "RUFWEICHE_SHARED": str(missing)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert (
        f"RFC 4475 torture messages not found: {missing / 'testdata' / 'rfc4475'} is missing"
        in result.stdout
    )
