"""Dial plans that change while the switch runs: the file watcher and the edge restart.

A changed file reloads the set (:meth:`Supervisor.reload`): a broken file keeps the last
good set (its problems go to the log and to ``/healthz``); a good one goes to every worker,
and when its numbers or device targets changed, the edge restarts with the new lists (they
are part of Kamailio's configuration: the toll-fraud guard).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from switch.edge import Edge, EdgeSettings
from switch.errors import EdgeError

if TYPE_CHECKING:
    from switch.supervisor.supervisor import Supervisor

log = logging.getLogger("rufweiche")

RELOAD_DEBOUNCE_MS = 300


async def watch_dialplans(sup: Supervisor) -> None:
    """Reload on every (debounced) change below the dial-plan paths, until ``sup.stopping``."""
    from watchfiles import awatch

    paths = [p for p in sup.settings.dialplans if p.exists()]
    if not paths:
        return
    async for _changes in awatch(
        *paths, debounce=RELOAD_DEBOUNCE_MS, stop_event=sup.stopping, recursive=True
    ):
        await sup.reload()


async def restart_edge(sup: Supervisor, settings: EdgeSettings) -> None:
    """Stop the running edge and start one with ``settings``; a failure is logged (the
    workers still run: calls from the trunk wait for the next good reload)."""
    log.info("dial plan numbers or targets changed: restarting the edge")
    if sup.edge is not None:
        await sup.edge.stop()
    sup.edge = Edge(settings)
    try:
        await sup.edge.start()
    except EdgeError as exc:
        log.error("the edge did not restart: %s", exc)
