"""RFC 4475 torture messages against the edge, in a private network namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.edge import needs_kamailio
from tests.helpers.processes import REPO, SHARED

# ../shared beside the clone; RUFWEICHE_SHARED names another place
# (tests/switch/edge/test_shared_data.py points it at a missing directory to show the skip).
TESTDATA = Path(os.environ.get("RUFWEICHE_SHARED", SHARED)) / "testdata" / "rfc4475"
MISSING = (
    f"RFC 4475 torture messages not found: {TESTDATA} is missing"
    " (a clone without ../shared/testdata skips this test)"
)

pytestmark = [
    pytest.mark.skipif(not (TESTDATA / "manifest.tsv").is_file(), reason=MISSING),
    pytest.mark.peer,
    pytest.mark.netns,
    needs_kamailio,
    pytest.mark.skipif(os.geteuid() != 0, reason="unshare -n needs root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is needed"),
]


def test_edge_survives_every_rfc4475_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(
                "timeout",
                "90",
                "unshare",
                "-n",
                sys.executable,
                "-m",
                "tests.helpers.netns_torture",
            ),
            str(tmp_path),
            str(TESTDATA),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    alive: dict[str, bool] = report["alive"]
    assert len(alive) == 50  # 49 messages of RFC 4475 §3 plus the archive's test.dat
    dead = [name for name, ok in alive.items() if not ok]
    assert dead == [], report["log"]
    assert report["running_at_end"]
