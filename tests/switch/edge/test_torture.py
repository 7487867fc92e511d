"""RFC 4475 torture messages against the edge, in a private network namespace."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers.edge import needs_kamailio
from tests.helpers.processes import SHARED, run_reporting

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
    isolated = ("unshare", "-n", sys.executable, "-m", "tests.helpers.netns_torture")
    report, _ = run_reporting([*isolated, str(tmp_path), str(TESTDATA)], 90)
    alive: dict[str, bool] = report["alive"]
    assert len(alive) == 50  # 49 messages of RFC 4475 §3 plus the archive's test.dat
    dead = [name for name, ok in alive.items() if not ok]
    assert dead == [], report["log"]
    assert report["running_at_end"]
