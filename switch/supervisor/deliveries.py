"""Deliveries in flight: the background tasks of the message desk and the owner's notices.

A mail or an MQTT announcement runs as a task of its own, so that a slow mail server or
broker never delays a call or the answer to a page. :class:`Deliveries` holds every one
until it ends (the event loop keeps only weak references to tasks), lets tests and the
shutdown wait for them (:meth:`Deliveries.idle`) and, on :meth:`Deliveries.close`, gives
them ``timeout`` seconds before it cancels what is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Deliveries:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, delivery: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every delivery in flight has ended (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.timeout)

    async def close(self) -> None:
        """Give the deliveries in flight ``timeout`` seconds, then cancel the rest."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.timeout)
        for task in self._tasks:
            task.cancel()


__all__ = ["Deliveries"]
