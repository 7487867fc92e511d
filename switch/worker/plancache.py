"""PlanCache: the compiled dial plans the fork-server hands to the workers it forks.

The zygote (:mod:`switch.worker.forkserver`) compiles the plans once, before it forks, so
that every worker shares their pages instead of compiling its own copy (~8 MB for the
example plans). A plan edit must still reach a worker started after it (a restart after a
crash, a recycle): :meth:`get` compares the files' sizes and modification times with those
the cached set was loaded from and loads again when they differ. A set that does not load
is not cached; the worker then loads the files itself and reports the problem as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rules import DialPlanError, DialPlanSet, load_dialplans

log = logging.getLogger("switch.worker")

Signature = tuple[tuple[str, int, int], ...]


def signature(paths: Sequence[Path]) -> Signature:
    """Every file below ``paths`` with its size and mtime (a superset of what the loader reads)."""
    entries: list[tuple[str, int, int]] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                st = file.stat()
            except OSError:
                entries.append((str(file), -1, -1))
                continue
            entries.append((str(file), st.st_size, st.st_mtime_ns))
    return tuple(entries)


class PlanCache:
    """One compiled plan set per list of paths, valid while its files are unchanged."""

    def __init__(self) -> None:
        self._sets: dict[tuple[Path, ...], tuple[Signature, DialPlanSet]] = {}

    def load(self, paths: Sequence[Path]) -> DialPlanSet | None:
        """Load (or keep) the set for ``paths``; None when it does not load."""
        key = tuple(paths)
        current = signature(key)
        cached = self._sets.get(key)
        if cached is not None and cached[0] == current:
            return cached[1]
        try:
            plans = load_dialplans(list(key))
        except DialPlanError as exc:
            self._sets.pop(key, None)
            log.warning("fork server: dial plans not preloaded: %s", exc)
            return None
        self._sets[key] = (current, plans)
        return plans

    def get(self, paths: Sequence[Path]) -> DialPlanSet | None:
        """The cached set for ``paths`` if its files are unchanged since it was loaded."""
        key = tuple(paths)
        cached = self._sets.get(key)
        if cached is None or cached[0] != signature(key):
            return None
        return cached[1]


__all__ = ["PlanCache", "signature"]
