"""The audit log: who did what, when, from where. Append-only JSON lines.

One line per event (``var/audit.jsonl`` by default)::

    {"at": "2026-11-25T03:01:02.123Z", "event": "login", "who": "alice",
     "from": "127.0.0.1", "tenant": null, "ok": true}

Events written by the switch: ``login``, ``login_failed``, ``login_locked``, ``logout``,
``enrolled``, ``presence_set``, ``data_read`` (calls and usage through the API: the data
exports), ``plan_reload`` (the supervisor), ``retention`` (a retention pass and what it
deleted, switch/supervisor/retention.py), ``outbound_limit`` (a worker stopped a call
out by a per-person limit, issue 17; ``from`` is the worker) and ``token_used`` for the
first use of a token in a run. The supervisor and other parts call :meth:`AuditLog.write`; nothing
else about the file is their business.

Lines older than ``retention_days`` are dropped when the log is opened and once a day
after (the file is rewritten then; between prunes it is only ever appended to). Each
line is written with one ``write()`` on an ``O_APPEND`` descriptor, so lines from two
processes do not interleave (POSIX, for writes up to PIPE_BUF and in practice beyond on
local file systems).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

DAY: Final = 86400.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """``audit.write("presence_set", who="alice", source="10.0.0.7", tenant="mueller", ...)``"""

    def __init__(
        self, path: Path, *, retention_days: int = 180, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self.clock = clock
        self._next_prune = 0.0
        self.failures = 0  # writes that did not reach the disk (logged, never raised)

    def write(
        self,
        event: str,
        *,
        who: str | None,
        source: str | None = None,
        tenant: str | None = None,
        **detail: Any,
    ) -> None:
        """Append one event. Never raises: an audit failure is logged, the action goes on
        (refusing service because the disk is full would be worse for a telephone)."""
        now = self.clock()
        if now >= self._next_prune:
            self.prune()
        entry = {"at": _iso(now), "event": event, "who": who, "from": source, "tenant": tenant}
        entry.update(detail)
        line = json.dumps(entry, separators=(",", ":"), default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            self.failures += 1
            log.error("audit log %s: cannot write %s event: %s", self.path, event, exc.strerror)

    def read(self) -> list[dict[str, Any]]:
        """All events still in the file, oldest first (for tests and `audit.read` users)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        events: list[dict[str, Any]] = []
        for line in text.splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
        return events

    def prune(self) -> int:
        """Drop events older than the retention; returns how many were dropped."""
        now = self.clock()
        self._next_prune = now + DAY
        cutoff = _iso(now - self.retention_days * DAY)
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("audit log %s: cannot prune: %s", self.path, exc.strerror)
            return 0
        # ISO 8601 UTC strings of one format sort as the times they name.
        kept = [line for line in lines if line[7:31] >= cutoff or not line.startswith('{"at":"')]
        dropped = len(lines) - len(kept)
        if dropped:
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.writelines(kept)
            os.replace(tmp, self.path)
        return dropped
