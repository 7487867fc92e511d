"""The spool: call-record items the database refused for now, in an append-only file.

When SQLite refuses a batch with :class:`sqlite3.OperationalError` (the database is
locked beyond ``busy_timeout``, the disk is full, an I/O error), the writer appends the
batch here: JSON lines next to the database (``<db>.spool.jsonl``), each append flushed
and ``os.fsync``-ed, because the spool is used precisely when the database is unwell.

Replaying takes the file (:meth:`Spool.take` renames it to ``<db>.spool.replaying.jsonl``
before reading it, so items spooled meanwhile land in a fresh file), the writer commits
what it read, then :meth:`Spool.replayed` removes the taken file. A torn last line (a
crash during an append) is logged and skipped, never blocking the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switch.call.calllog import CallRecord
from switch.records.rows import CallerPolicy

log = logging.getLogger("switch.records.writer")


@dataclass(frozen=True, slots=True)
class Report:
    """One phase report of a call, as the writer queues and spools it."""

    phase: str
    record: CallRecord
    policy: CallerPolicy

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "call",
            "phase": self.phase,
            "policy": self.policy.value,
            "record": self.record.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Abort:
    """Close the active calls of ``worker`` (all when None) as aborted, as of ``at_wall``."""

    worker: str | None
    at_wall: float
    done: asyncio.Future[int] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"op": "abort", "worker": self.worker, "at_wall": self.at_wall}

    def resolve(self, closed: int) -> None:
        """Tell whoever waits how many calls were closed (0 when spooled or refused)."""
        if self.done is not None and not self.done.done():
            self.done.set_result(closed)


Item = Report | Abort


class Spool:
    """``<db>.spool.jsonl`` and the file a replay works on."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".spool.jsonl")
        self._taken = db_path.with_name(db_path.name + ".spool.replaying.jsonl")

    @property
    def pending(self) -> bool:
        """Items are waiting (appended, or taken by a replay that has not finished)."""
        return self.path.exists() or self._taken.exists()

    def append(self, items: Sequence[Item]) -> None:
        """Append and fsync; :class:`OSError` when the spool cannot be written."""
        lines = "".join(json.dumps(i.to_json(), separators=(",", ":")) + "\n" for i in items)
        data = lines.encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                # A full disk can take half a line: cut it off, or the next append would
                # glue its first line to the torn one (and that item would be unreadable).
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)

    def take(self) -> list[Item] | None:
        """The items to replay (a replay that failed before is taken again); None when empty."""
        if not self._taken.exists():
            try:
                self.path.rename(self._taken)
            except FileNotFoundError:
                return None
        return read(self._taken)

    def replayed(self) -> None:
        """The taken items are in the database: forget them."""
        self._taken.unlink()


def read(path: Path) -> list[Item]:
    """The items of a spool file, skipping (and logging) lines that cannot be read."""
    items: list[Item] = []
    with open(path, encoding="utf-8") as spool:
        for number, line in enumerate(spool, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if data["op"] == "abort":
                    items.append(Abort(data["worker"], float(data["at_wall"])))
                else:
                    record = CallRecord.from_dict(data["record"])
                    items.append(Report(data["phase"], record, CallerPolicy(data["policy"])))
            except (ValueError, KeyError, TypeError) as exc:
                # A torn last line (crash during append) must not block the rest.
                log.error("call-record spool %s line %d unreadable, skipped: %s", path, number, exc)
    return items


# ------------------------------------------------- when the disk is full (issue 14, item 8)


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL, or an OSError for a full file system or quota."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


class Reserve:
    """A preallocated file next to the database, given back when the disk is full.

    Held from the start (``posix_fallocate``: the blocks are really taken, not a sparse
    file), released on the first "disk full", so that the spool (and SQLite itself) find
    room for the records of the next minutes while the operator frees the disk; taken
    again once the file system has twice its size free.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = max(0, size)
        self.held = False
        self.released = 0  # how often it was given back

    def hold(self) -> bool:
        """Preallocate the file; False (logged) when there is no room for it."""
        if self.size == 0 or self.held:
            return self.held
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning(
                "call-record reserve %s (%d bytes) not taken: %s", self.path, self.size, exc
            )
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        self.held = True
        return True

    def release(self) -> bool:
        """Give the space back; True when there was a reserve to give."""
        if not self.held:
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.held = False
        self.released += 1
        log.error(
            "disk full: released the call-record reserve %s (%d bytes) so that records can "
            "still be written; free space on this file system",
            self.path,
            self.size,
        )
        return True

    def restore(self) -> bool:
        """Take the reserve again when the file system has room for it twice over."""
        if self.size == 0 or self.held:
            return self.held
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return False
        if stat.f_bavail * stat.f_frsize < 2 * self.size:
            return False
        if self.hold():
            log.info("call-record reserve %s taken again", self.path)
        return self.held


@dataclass(slots=True)
class Put:
    """Where :meth:`Fallback.put` left items: spooled to ``spool``, or held in memory."""

    spool: Path | None
    held: int = 0
    lost_reports: int = 0
    lost_items: int = 0


class Fallback:
    """What the database refused for now, in order of preference: the spool next to the
    database, the spools in ``spool_dirs`` (another file system), then memory (a bounded
    backlog). Only when the backlog exceeds ``backlog_max`` are the oldest items dropped
    (a later report of a call carries the whole record, so the newest are the ones to keep).
    """

    def __init__(
        self,
        db_path: Path,
        spool_dirs: Sequence[Path] = (),
        *,
        backlog_max: int = 20_000,
        reserve_bytes: int = 0,
    ) -> None:
        self.spools = [Spool(db_path), *(Spool(Path(d) / db_path.name) for d in spool_dirs)]
        self.backlog: deque[Item] = deque()
        self.backlog_max = max(0, backlog_max)
        self.reserve = Reserve(db_path.with_name(db_path.name + ".reserve"), reserve_bytes)
        self.last_error: str | None = None

    @property
    def pending(self) -> bool:
        """Items wait somewhere: in a spool file or in memory."""
        return bool(self.backlog) or any(s.pending for s in self.spools)

    def start(self) -> None:
        for spool in self.spools[1:]:
            with contextlib.suppress(OSError):
                spool.path.parent.mkdir(parents=True, exist_ok=True)
        self.reserve.hold()

    def noticed(self, exc: BaseException) -> bool:
        """A write failed: when the disk is full, give the reserve back (True if it was)."""
        self.last_error = str(exc)
        return is_disk_full(exc) and self.reserve.release()

    def put(self, items: Sequence[Item]) -> Put:
        """Spool ``items`` behind what waits in memory, or keep them in memory."""
        waiting = [*self.backlog, *items]
        self.backlog.clear()
        for spool in self.spools:
            for _attempt in (1, 2):
                try:
                    spool.append(waiting)
                except OSError as exc:
                    if self.noticed(exc):
                        continue  # the reserve was given back just now: try once more
                    log.warning("call-record spool %s cannot be written: %s", spool.path, exc)
                    break
                return Put(spool.path)
        return self._hold(waiting)

    def _hold(self, items: list[Item]) -> Put:
        self.backlog.extend(items)
        excess = len(self.backlog) - self.backlog_max
        dropped = [self.backlog.popleft() for _ in range(max(0, excess))]
        reports = sum(isinstance(i, Report) for i in dropped)
        if dropped:
            log.error(
                "CALL RECORDS LOST: %d item(s) (%d report(s)) dropped, the in-memory backlog "
                "is full (%d) and neither the database nor a spool can be written",
                len(dropped),
                reports,
                self.backlog_max,
            )
        return Put(None, held=len(self.backlog), lost_reports=reports, lost_items=len(dropped))

    def take_backlog(self) -> list[Item]:
        items = list(self.backlog)
        self.backlog.clear()
        return items
