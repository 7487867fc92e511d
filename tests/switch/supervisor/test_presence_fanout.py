"""Presence replication to the workers (switch/supervisor/supervisor.py, on_presence_change):
a worker hears of a tenant's presence only when the states it routes by changed."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from presence.hub import PresenceHub
from rules import DialPlanSet
from switch.control import messages as control
from switch.metrics import Metrics
from switch.records.writer import RecordWriter
from switch.supervisor.settings import Settings
from switch.supervisor.supervisor import Supervisor
from switch.web.dashboard import DashboardState, LiveFeed


class Worker:
    """What the supervisor needs of a WorkerProcess to send it a message."""

    def __init__(self) -> None:
        self.name = "w1"
        self.got: list[Any] = []

    async def send(self, message: Any) -> bool:
        self.got.append(message)
        return True


async def test_only_a_changed_snapshot_reaches_the_workers() -> None:
    hub = PresenceHub({"mueller": {"jan", "anna"}})
    metrics = Metrics()
    tasks: list[asyncio.Task[Any]] = []
    sup = Supervisor(
        Settings(),
        DialPlanSet({}),
        cast(RecordWriter, None),  # not used by presence replication
        metrics,
        LiveFeed(DashboardState(window=metrics.window)),
        hub,
        [],
        spawn=lambda coro: tasks.append(asyncio.ensure_future(coro)),
    )
    worker = Worker()
    sup.workers = [cast(Any, worker)]
    hub.add_listener(sup.on_presence_change)

    hub.call_started("mueller", "jan")  # jan takes a call
    hub.call_started("mueller", "jan")  # and a second one: no news for the workers
    hub.call_ended("mueller", "jan")  # one of them ends: still on the phone
    hub.call_ended("mueller", "jan")  # the other: free again
    hub.set("mueller", "anna", "away", source="web")
    hub.set("mueller", "anna", "away", source="phone", note="Mittag")  # only the note
    await asyncio.gather(*tasks)

    sent = [dict(m.states) for m in worker.got if isinstance(m, control.Presence)]
    assert sent == [
        {"jan": "busy", "anna": "available"},
        {"jan": "available", "anna": "available"},
        {"jan": "available", "anna": "away"},
    ]
    assert sup.presence_sent["mueller"].states == {"jan": "available", "anna": "away"}
