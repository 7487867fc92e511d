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
import json
import logging
import os
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
        with open(self.path, "a", encoding="utf-8") as spool:
            spool.write(lines)
            spool.flush()
            os.fsync(spool.fileno())

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
