"""Issue 14, item 8: a full disk must not lose call records. On a REAL full file system.

Each case runs :mod:`tests.helpers.full_disk_run` in a private mount namespace
(``unshare -m --propagation private``) on a 1 MiB tmpfs that the script fills to the
last byte before 20 calls are reported; nothing is simulated inside SQLite. Before the
fix, all 20 were lost ("call-record spool … cannot be written, 1 lost", 20 times).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.processes import run_reporting

pytestmark = [
    pytest.mark.netns,  # a private mount namespace: needs root, like the network ones
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="unshare -m and mount need root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is needed"),
]

CALLS = 20


def run_full_disk(tmp_path: Path, mode: str) -> dict[str, Any]:
    disk, spare = tmp_path / "disk", tmp_path / "spare"
    disk.mkdir()
    spare.mkdir()
    mounts = f"mount -t tmpfs -o size=1m tmpfs {disk}"
    if mode == "fallback":
        mounts += f" && mount -t tmpfs -o size=4m tmpfs {spare}"
    script = (
        f"{mounts} && exec {sys.executable} -m tests.helpers.full_disk_run {disk} {mode} {spare}"
    )
    result, log = run_reporting(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script], 50
    )
    result["log"] = log
    assert result["filled_bytes"] > 0
    return result


def test_a_full_disk_keeps_the_records_in_memory_until_there_is_room(tmp_path: Path) -> None:
    result = run_full_disk(tmp_path, "memory")
    for during in (result["full"], result["still_full"]):
        assert during["state"] == "not durable"
        assert during["durable"] is False
        assert during["backlog"] == CALLS
        assert during["backlog_max"] == 20_000
        assert during["lost"] == 0
    assert "records NOT DURABLE" in result["log"]
    assert result["stats"]["failed_batches"] > CALLS  # it kept retrying while full
    assert result["after"]["state"] == "durable"
    assert result["after"]["backlog"] == 0
    assert result["stats"]["records_lost"] == 0
    assert result["rows"] == CALLS  # every record reached the database


def test_the_reserve_is_given_back_when_the_disk_is_full(tmp_path: Path) -> None:
    result = run_full_disk(tmp_path, "reserve")
    assert result["full"]["reserve_released"] == 1
    assert result["stats"]["records_written"] + result["stats"]["records_spooled"] > 0
    assert "released the call-record reserve" in result["log"]
    assert result["stats"]["records_lost"] == 0
    assert result["rows"] == CALLS
    assert result["after"]["reserve_bytes"] == 128 * 1024  # taken again once there is room


def test_a_second_spool_directory_keeps_them_durable(tmp_path: Path) -> None:
    result = run_full_disk(tmp_path, "fallback")
    for during in (result["full"], result["still_full"]):
        assert during["state"] == "durable"
        assert during["backlog"] == 0
        assert during["spool_pending"] is True
    assert result["stats"]["records_spooled"] == CALLS
    assert result["stats"]["records_held"] == 0
    assert result["rows"] == CALLS
    assert result["after"]["spool_pending"] is False


def test_only_beyond_the_bound_are_records_dropped_counted_and_logged(tmp_path: Path) -> None:
    result = run_full_disk(tmp_path, "bound")
    assert result["full"]["backlog"] == 5
    assert result["full"]["lost"] == CALLS - 5
    assert "CALL RECORDS LOST" in result["log"]
    assert result["rows"] == 5  # the newest five
