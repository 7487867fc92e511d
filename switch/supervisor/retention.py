"""Retention in the running switch (issue 14, item 9): the ``retention:`` settings, enforced.

Theory of operation
-------------------
``retention: {calls: 90d, voicemail: 30d, dictation: 30d, audit: 365d}`` in the settings
file (:class:`~switch.supervisor.settings.RetentionSettings`; ``null`` keeps a kind for
ever; ``tenants: {mueller: {calls: 30d}}`` gives one business its own periods). A
:class:`Retention` task runs under the supervisor's TaskGroup (:mod:`switch.supervisor.app`):
once at start, then every ``interval_hours`` (24), until the switch stops. Each pass
deletes what is older — calls with their legs (never one still in progress), voicemail
messages and dictations with their WAV files (:func:`switch.records.privacy.purge_by_kind`)
and audit lines (:meth:`switch.access.audit.AuditLog.prune`) — logs the counts and writes a
``retention`` event to the audit log. A pass that fails is logged and audited
(``ok: false``) and tried again at the next interval; it never stops the switch.

``rufweiche privacy purge`` stays, for a one-off purge by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from switch.access.audit import DAY, AuditLog
from switch.errors import SwitchError
from switch.records import privacy
from switch.records.backend import RecordsSettings
from switch.supervisor.settings import RetentionSettings

log = logging.getLogger("rufweiche")

KINDS: Final = privacy.RETENTION_KINDS


def seconds(age: str | None) -> float | None:
    """``90d``/``12w``/``36h``/``90`` (days) as seconds; None stays None (keep for ever)."""
    return None if age is None else privacy.parse_age(age)


class Retention:
    """Deletes data older than the ``retention:`` settings; see the module docstring."""

    def __init__(
        self,
        settings: RetentionSettings,
        data_dir: Path,
        audit: AuditLog | None = None,
        *,
        records: RecordsSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.records = records  # SQLite under data_dir, or the shared PostgreSQL schema
        self.audit = audit
        self.clock = clock
        self.passes = 0
        self.last: dict[str, int] | None = None

    async def enforce(self) -> dict[str, int]:
        """One pass; returns the counts deleted by kind (``audit``: lines dropped)."""
        now = self.clock()
        config = self.settings
        ages = {kind: seconds(getattr(config, kind)) for kind in KINDS}
        own: dict[str, set[str]] = {kind: set() for kind in KINDS}
        for tenant, override in config.tenants.items():
            for kind in KINDS:
                if getattr(override, kind) is not None:
                    own[kind].add(tenant)
        counts = await privacy.purge_by_kind(
            self.data_dir, ages, now=now, skip_tenants=own, records=self.records
        )
        for tenant, override in config.tenants.items():
            mine = {kind: seconds(getattr(override, kind)) for kind in KINDS}
            mine = {kind: age for kind, age in mine.items() if age is not None}
            if mine:
                for kind, n in (
                    await privacy.purge_by_kind(
                        self.data_dir, mine, now=now, tenant=tenant, records=self.records
                    )
                ).items():
                    counts[kind] += n
        counts["audit"] = self._prune_audit()
        self.passes += 1
        self.last = counts
        log.info(
            "retention: deleted %s",
            ", ".join(f"{kind} {n}" for kind, n in counts.items()),
        )
        if self.audit is not None:
            self.audit.write("retention", who="switch", ok=True, deleted=counts)
        return counts

    def _prune_audit(self) -> int:
        if self.audit is None or self.settings.audit is None:
            return 0
        age = seconds(self.settings.audit)
        assert age is not None
        self.audit.retention_days = max(1, round(age / DAY))
        return self.audit.prune()

    async def run(self, stopping: asyncio.Event) -> None:
        """At start, then every ``interval_hours``, until ``stopping`` is set."""
        interval = self.settings.interval_hours * 3600
        while not stopping.is_set():
            try:
                await self.enforce()
            except (SwitchError, OSError) as exc:
                log.error("retention pass failed, tried again in %.0f s: %s", interval, exc)
                if self.audit is not None:
                    self.audit.write("retention", who="switch", ok=False, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)


__all__ = ["Retention", "seconds"]
