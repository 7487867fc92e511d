"""The call-flow timers of one worker: a heap of deadlines, cancelled lazily."""

from __future__ import annotations

import heapq
import itertools


class Timers:
    """Named timers per call key; a cancelled or restarted timer's heap entry is skipped."""

    def __init__(self) -> None:
        self._seq = itertools.count()
        self._heap: list[tuple[int, int, int, str]] = []  # (deadline_ns, seq, call, name)
        self._ids: dict[tuple[int, str], int] = {}

    def start(self, key: int, name: str, deadline_ns: int) -> None:
        seq = next(self._seq)
        self._ids[(key, name)] = seq
        heapq.heappush(self._heap, (deadline_ns, seq, key, name))

    def cancel(self, key: int, name: str) -> None:
        self._ids.pop((key, name), None)  # the heap entry is skipped when due

    def forget(self, key: int) -> None:
        """Every timer of a call that is gone."""
        for name in [n for (k, n) in self._ids if k == key]:
            self._ids.pop((key, name), None)

    def next_deadline(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now_ns: int) -> list[tuple[int, str]]:
        """(call key, timer name) of every live timer due by ``now_ns``, in order.

        Taken off the heap at once: a timer started while these are fed waits for the
        next round, even when it is due already.
        """
        due: list[tuple[int, str]] = []
        while self._heap and self._heap[0][0] <= now_ns:
            _, seq, key, name = heapq.heappop(self._heap)
            if self._ids.get((key, name)) != seq:
                continue
            del self._ids[(key, name)]
            due.append((key, name))
        return due


__all__ = ["Timers"]
