"""``rufweiche run``: the supervisor process put together, started and stopped.

Theory of operation
-------------------
:func:`main` validates the settings and the dial plans, then :func:`serve_switch` makes
every part first (nothing started, nothing bound late: the :class:`Supervisor` gets them
all at construction) and starts them in this order under one ``AsyncExitStack`` (so
shutdown runs in reverse order and cannot be skipped), inside one ``asyncio.TaskGroup``
that holds every long-lived task:

* :func:`start_records` — the call-record writer (:mod:`switch.records.writer`), which
  first closes the calls a previous run left open as ``aborted``;
* :func:`start_presence` — the presence hub (:mod:`presence.hub`), its store (SQLite, or the
  shared PostgreSQL schema: records.backend.presence_store) and,
  when enabled, the MQTT bridge (:mod:`presence.mqtt`): a dead broker only delays MQTT;
* :func:`start_media_relay` — rtpengine (:mod:`switch.edge.rtpengine`) when media leaves
  the host, restarted by a watch task in the TaskGroup if it dies;
* :func:`start_edge` — Kamailio (:mod:`switch.edge`) in front of several workers, with
  SIP presence (PIDF) published through it;
* :func:`start_http` — ``/metrics``, ``/healthz``, the API and the dashboard
  (:mod:`switch.web.app`), with login when a users file exists;
* :class:`~switch.supervisor.retention.Retention` — deletes what the ``retention:``
  settings no longer keep, at start and then daily (issue 14);
* :func:`run_workers` — the worker slots (:mod:`switch.control.pool`) and the dial-plan
  watcher (:mod:`switch.supervisor.reload`), until SIGTERM/SIGINT; then the calls drain.

The ``make_*``/``start_*`` functions live in :mod:`switch.supervisor.parts`; this module
holds the order they run in (:func:`serve_switch`) and :func:`main`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from rules import DialPlanError, DialPlanSet, load_dialplans
from switch.edge import Edge
from switch.errors import SwitchError
from switch.metrics import Metrics
from switch.records.forwarding import ForwardingStore
from switch.records.reminders import ReminderStore
from switch.records.schema import RECORDS_FILE
from switch.supervisor.parts import (
    make_access,
    make_board,
    make_bridge,
    make_desk,
    make_notifier,
    make_voicemail,
    run_workers,
    start_edge,
    start_http,
    start_media_relay,
    start_presence,
    start_queues,
    start_records,
)
from switch.supervisor.reminders import pop_due_reminders
from switch.supervisor.retention import Retention
from switch.supervisor.settings import Settings, load_settings
from switch.supervisor.supervisor import Supervisor
from switch.supervisor.topology import edge_settings, worker_specs
from switch.supervisor.trunkstate import TrunkMonitor
from switch.web.clicktocall import clicktocall_routes
from switch.web.console import console_routes
from switch.web.dashboard import DashboardState, LiveFeed
from switch.web.forwarding_api import forwarding_routes
from switch.web.messages_api import messages_routes
from switch.web.putthrough import putthrough_routes
from switch.web.reminders_api import reminders_routes
from switch.web.week_api import week_routes

log = logging.getLogger("rufweiche")


async def serve_switch(settings: Settings, plans: DialPlanSet) -> int:
    """Run the switch until SIGTERM/SIGINT. A part that fails to start raises its own error
    (not the TaskGroup's one-element group), so that :func:`main` can name it."""
    try:
        return await _serve(settings, plans)
    except ExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _serve(settings: Settings, plans: DialPlanSet) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as tasks, AsyncExitStack() as stack:

        def spawn(coro: Coroutine[Any, Any, Any]) -> object:
            return tasks.create_task(_logged(coro))

        writer = await start_records(stack, settings)
        hub = await start_presence(stack, settings, plans)
        metrics = Metrics()
        metrics.watch_records(writer.health)
        feed = LiveFeed(DashboardState(window=metrics.window))
        stack.callback(feed.close)
        await feed.load_today(writer.recent_calls)  # "calls per business today" survive a restart
        specs = worker_specs(settings)
        edge_config = edge_settings(settings, plans, specs) if settings.edge_enabled else None
        audit, auth_layer, http_host = make_access(settings)
        bridge = make_bridge(settings, hub)
        voicemail = make_voicemail(settings, bridge)
        sup = Supervisor(
            settings,
            plans,
            writer,
            metrics,
            feed,
            hub,
            specs,
            spawn=spawn,
            bridge=bridge,
            edge=Edge(edge_config)
            if edge_config is not None and settings.edge_mode != "external"
            else None,
            audit=audit,
            voicemail=voicemail,
            forwarding=ForwardingStore(settings.data_dir),
        )
        assert sup.forwarding is not None
        sup.forwarding.listeners.append(sup.on_forwarding_change)
        for tenant in hub.directory:
            sup._show_presence(tenant)
        hub.add_listener(sup.on_presence_change)
        start_queues(sup, metrics, spawn)  # issue 19
        if sup.bridge is not None:
            await stack.enter_async_context(sup.bridge)
        await stack.enter_async_context(voicemail)
        desk = await stack.enter_async_context(make_desk(settings, sup, bridge))
        board = make_board(sup, desk)
        stack.push_async_callback(board.close)
        stack.push_async_callback(make_notifier(settings, sup, desk).close)
        await start_media_relay(stack, tasks, sup, edge_config, settings.edge_mode)
        await start_edge(stack, sup, edge_config, settings.edge_mode)
        if settings.trunks.accounts and sup.edge is not None:
            sup.trunks = TrunkMonitor(
                settings.trunks, sup.edge_rpc, metrics.registry, on_change=sup.feed.set_trunks
            )
            sup.feed.set_trunks(sup.trunks.rows())  # the dashboard's trunk card
            spawn(sup.trunks.run(sup.stopping))
        reminders = await stack.enter_async_context(ReminderStore(settings.data_dir / RECORDS_FILE))
        tasks.create_task(pop_due_reminders(reminders, board.push, sup.stopping), name="reminders")
        routes = [
            *messages_routes(desk),
            *reminders_routes(reminders),
            *console_routes(board),
            *putthrough_routes(sup.call_record, sup.transfer_call),
            *clicktocall_routes(sup.dialer.dial),
            *forwarding_routes(sup.forwarding, desk.plan_of),
            *week_routes(desk.plan_of),
        ]
        await start_http(stack, sup, voicemail, auth_layer, http_host, routes)
        retention = Retention(  # issue 14
            settings.retention, settings.data_dir, audit, records=settings.records
        )
        tasks.create_task(retention.run(sup.stopping), name="retention")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sup.stopping.set)
        stack.callback(_remove_signal_handlers, loop)
        await run_workers(tasks, sup)
    log.info("stopped")
    return 0


async def _logged(coro: Coroutine[Any, Any, Any]) -> None:
    # A background send or recycle that fails must not stop the switch (as it did not when
    # these were fire-and-forget tasks): it is logged, and the TaskGroup goes on.
    try:
        await coro
    except Exception:
        log.exception("background task failed")


def _remove_signal_handlers(loop: asyncio.AbstractEventLoop) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)


def main(
    dialplans: Sequence[Path] = (),
    sip: str | None = None,
    http: str | None = None,
    settings: Path | None = None,
    workers: int | None = None,
    data_dir: Path | None = None,
    mqtt: str | None = None,
    no_mqtt: bool = False,
    log_level: str | None = None,
    edge_mode: str | None = None,
    **_ignored: Any,
) -> int:
    """Entry point of ``rufweiche run``; returns the process exit code.

    A settings file that cannot be used raises :class:`switch.errors.SettingsError` (the CLI
    prints it as one ``rufweiche: file:line:col: key: …`` line per problem, exit 1).
    """
    overrides: dict[str, Any] = {
        "dialplans": tuple(dialplans) or None,
        "sip": sip,
        "http": http,
        "workers": workers,
        "data_dir": data_dir,
        "log_level": log_level.upper() if log_level else None,
        "edge_mode": edge_mode,
    }
    config = load_settings(settings, overrides)
    if mqtt is not None or no_mqtt:
        mqtt_settings = config.mqtt.model_copy(
            update={"enabled": not no_mqtt, **({"broker": mqtt} if mqtt is not None else {})}
        )
        config = config.model_copy(update={"mqtt": mqtt_settings})
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        plans = load_dialplans(config.dialplans)
    except DialPlanError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"rufweiche: {len(exc.problems)} problem(s) in the dial plans; not started")
        return 1
    for warning in plans.warnings:
        log.warning("%s", warning)
    try:
        return asyncio.run(serve_switch(config, plans))
    except (SwitchError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1
