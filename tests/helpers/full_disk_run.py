"""The part of tests/switch/records/test_full_disk.py that runs inside ``unshare -m``.

``python -m tests.helpers.full_disk_run DISK MODE [SPARE]``: ``DISK`` is a small
tmpfs mounted for this process only (and ``SPARE`` a second one, for ``fallback``). A
:class:`RecordWriter` keeps its database on ``DISK``; the disk is filled to the last
page, 20 calls are reported, the disk stays full for a second, then the filler is
removed. Prints one JSON object: the writer's health while full and after, the rows in
the database, the writer's counters. Modes:

``memory``    no reserve, no second spool: the records wait in memory
``reserve``   a 128 KiB reserve, given back when the disk is full
``fallback``  a second spool directory on ``SPARE`` (another file system)
``bound``     as ``memory`` with a backlog of 5: the oldest 15 are dropped, and counted
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from tests.helpers.records import make_record

CALLS = 20


def fill(disk: Path) -> int:
    """Write until the file system says ENOSPC; the bytes written."""
    written = 0
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (65536, 4096, 512, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return written


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])


async def run(disk: Path, mode: str, spare: Path | None) -> dict[str, Any]:
    db = disk / "var" / RECORDS_FILE
    options: dict[str, Any] = {"retry_interval": 0.4, "retry_min": 0.05}
    if mode == "reserve":
        options["reserve_bytes"] = 128 * 1024
    if mode == "fallback":
        assert spare is not None
        options["spool_dirs"] = [spare / "spool"]
    if mode == "bound":
        options["backlog_max"] = 5
    result: dict[str, Any] = {"mode": mode}
    async with RecordWriter(db, **options) as writer:
        await writer.flush()
        result["filled_bytes"] = fill(disk)
        for _ in range(CALLS):  # one batch each: every one meets the full disk
            writer.submit("started", make_record())
            await writer.flush()
        result["full"] = writer.health()
        await asyncio.sleep(1.0)  # the disk stays full; the writer retries meanwhile
        result["still_full"] = writer.health()
        (disk / "filler").unlink()
        deadline = time.monotonic() + 10
        while writer.spool_pending and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the writer's own retry timer does the work
        result["after"] = writer.health()
        stats = dataclasses.asdict(writer.stats)
        stats.pop("batch_sizes")
        result["stats"] = stats
    result["rows"] = count_rows(db)
    return result


def main() -> None:
    disk, mode = Path(sys.argv[1]), sys.argv[2]
    spare = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(asyncio.run(run(disk, mode, spare))))


if __name__ == "__main__":
    main()
