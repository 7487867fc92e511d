"""Due "call back later" reminders pop on the console (issue 18).

Every ``interval`` seconds the open reminders that are due and not yet handed over are
taken from the store (:meth:`switch.records.reminders.ReminderStore.pop_due`, which marks
them) and pushed to the live pages of their business (``event: reminder`` on
``/api/v1/desk/events``). A console that is not open then sees it in its list of open
reminders when it opens. Runs under the supervisor's TaskGroup until ``stopping``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from switch.errors import RecordsError
from switch.records.reminders import ReminderStore

log = logging.getLogger("switch.supervisor.reminders")

Push = Callable[[str, str, dict[str, Any]], None]


async def pop_due_reminders(
    store: ReminderStore,
    push: Push,
    stopping: asyncio.Event,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> None:
    while not stopping.is_set():
        try:
            for row in await store.pop_due(clock()):
                push(str(row["tenant"]), "reminder", row)
                log.info("reminder %s of tenant=%s is due", row["id"], row["tenant"])
        except RecordsError as exc:
            log.error("reminders not read: %s", exc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await stopping.wait()


__all__ = ["pop_due_reminders"]
