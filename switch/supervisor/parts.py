"""The supervisor's parts, each made (``make_*``) or started (``start_*``) by one function.

:func:`switch.supervisor.app.serve_switch` calls these in its order (see its module's
theory of operation) under one ``AsyncExitStack`` and one ``asyncio.TaskGroup``: the
records writer, presence and its MQTT bridge, the voicemail box, access (login, audit),
the media relay and the edge, the office parts of issue 18 (message desk, notifier,
console board), the queues (issue 19), HTTP, the worker slots and their fork server.
Each function takes what it needs and returns the part; none starts a task of its own
outside the TaskGroup it is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web

from presence.http import presence_routes
from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from presence.sip import PidfPublisher
from rules import DialPlanSet
from switch.access.audit import AuditLog
from switch.addresses import strip_port
from switch.control.launcher import ForkServer
from switch.edge import EdgeSettings, write_files
from switch.edge.rtpengine import MediaRelay
from switch.errors import ForkServerError
from switch.mail import MailServer
from switch.metrics import Metrics
from switch.records import backend as records_backend
from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from switch.supervisor import mediastate
from switch.supervisor.messages import MessageDesk, caller_history
from switch.supervisor.notices import Notifier
from switch.supervisor.queuemetrics import QueueMetrics
from switch.supervisor.queues import QueueService, plan_queues
from switch.supervisor.settings import Settings, endpoint
from switch.supervisor.supervisor import Supervisor, directory_of
from switch.supervisor.voicemail import VoicemailBox
from switch.web.app import make_app, serve
from switch.web.console import DeskBoard
from switch.web.guard import AuthLayer, is_loopback
from switch.web.queues_api import queues_routes
from switch.web.voicemail_api import voicemail_routes

log = logging.getLogger("rufweiche")


async def start_records(stack: AsyncExitStack, settings: Settings) -> RecordWriter:
    """SQLite under the data directory, or PostgreSQL shared by the nodes (``records:``)."""
    return await stack.enter_async_context(
        records_backend.writer(settings.records, settings.data_dir)
    )


async def start_presence(
    stack: AsyncExitStack, settings: Settings, plans: DialPlanSet
) -> PresenceHub:
    """The hub with the states of the last run, recorded to its store on every change."""
    store = await stack.enter_async_context(
        records_backend.presence_store(settings.records, settings.data_dir)
    )
    hub = PresenceHub(directory_of(plans), records=await store.load())
    await stack.enter_async_context(hub)
    await stack.enter_async_context(store.recording(hub))
    return hub


def _mqtt_password(settings: Settings) -> str | None:
    path = settings.mqtt.password_file
    return path.read_text().strip() if path else None


def make_bridge(settings: Settings, hub: PresenceHub) -> PresenceBridge | None:
    if not settings.mqtt.enabled:
        return None
    broker = endpoint(settings.mqtt.broker, 1883)
    return PresenceBridge(
        hub,
        broker.host,
        broker.port,
        username=settings.mqtt.username,
        password=_mqtt_password(settings),
        discovery=settings.mqtt.home_assistant_discovery,
        node=settings.records.node if settings.mqtt.share_presence else None,
    )


def make_voicemail(settings: Settings, bridge: PresenceBridge | None) -> VoicemailBox:
    """Voicemails are filed in the calls database; notices go out on the one MQTT bridge."""
    box = VoicemailBox(settings.data_dir / RECORDS_FILE, bridge)
    if settings.records.postgresql:
        box.store = records_backend.voicemail_store(settings.records, settings.data_dir)
    return box


def make_access(settings: Settings) -> tuple[AuditLog, AuthLayer | None, str]:
    """Issue 9, docs/security.md: a users file next to the other data turns login on;
    without one, HTTP stays open and is therefore bound to loopback only, whatever the
    settings say. Returns the audit log, the auth layer (or None) and the HTTP host."""
    http_host = settings.http_endpoint().host
    audit = AuditLog(settings.data_dir / "audit.jsonl")
    auth_layer: AuthLayer | None = None
    users_path = settings.data_dir / "users.yaml"
    if users_path.exists():
        auth_layer = AuthLayer.from_path(users_path, audit)
        audit.retention_days = auth_layer.users.options.audit_retention_days
    elif not (http_host == "localhost" or is_loopback(http_host)):
        log.warning(
            "no users file %s: HTTP has no login, so it listens on 127.0.0.1, not %s",
            users_path,
            http_host,
        )
        http_host = "127.0.0.1"
    return audit, auth_layer, http_host


async def start_edge(
    stack: AsyncExitStack, sup: Supervisor, config: EdgeSettings | None, mode: str
) -> None:
    """External mode writes the files for someone else's Kamailio; managed mode starts
    ``sup.edge`` and publishes presence through it (issue 5: PIDF to the edge, NOTIFY to
    phones that SUBSCRIBE)."""
    if config is None:
        return
    if mode == "external":
        paths = write_files(config)
        log.info("edge files for an external Kamailio written to %s", paths.config)
        return
    assert sup.edge is not None
    await sup.edge.start()
    stack.push_async_callback(sup.stop_edge)  # whichever edge runs at the end
    log.info("edge (Kamailio) listening on %s", config.listen)
    await stack.enter_async_context(PidfPublisher(sup.hub, sup.edge_rpc, domain=config.domain))


async def start_media_relay(
    stack: AsyncExitStack,
    tasks: asyncio.TaskGroup,
    sup: Supervisor,
    config: EdgeSettings | None,
    mode: str,
) -> MediaRelay | None:
    """rtpengine beside a managed edge whose media leaves the host (issue 15): started
    before Kamailio (its rtpengine module finds it at once), watched and restarted by a
    task in the supervisor's TaskGroup, stopped after the edge."""
    if config is None or mode == "external" or not config.media_relay_enabled:
        return None
    advertise = strip_port(config.advertise) if config.advertise else None
    relay = MediaRelay(
        config.media_relay,
        public=config.listen_host,
        advertise=advertise,
        log=config.run_dir / "rtpengine.log",
    )
    await relay.start()
    stack.push_async_callback(relay.stop)
    sup.media_relay = relay  # /healthz detail.media_relay
    mediastate.register(relay, sup.metrics.registry)  # rufweiche_media_relay_* on /metrics
    tasks.create_task(relay.watch(sup.stopping), name="media-relay-watch")
    log.info(
        "media relay (rtpengine) on %s, ng %s", config.listen_host, config.media_relay.ng_listen
    )
    return relay


def make_desk(settings: Settings, sup: Supervisor, bridge: PresenceBridge | None) -> MessageDesk:
    """Issue 18: messages for owners, mailed through their own mail server (settings smtp:)."""

    def server_of(tenant: str) -> MailServer | None:
        smtp = settings.smtp_for(tenant)
        return smtp.server() if smtp is not None else None

    return MessageDesk(
        settings.data_dir / RECORDS_FILE,
        lambda t: sup.plans.plans.get(t),
        server_of,
        bridge,
        store=records_backend.message_store(settings.records, settings.data_dir),
    )


def make_notifier(settings: Settings, sup: Supervisor, desk: MessageDesk) -> Notifier:
    """Issue 18: missed calls and recordings mailed to the owner (settings notify:)."""
    notify = settings.notify
    notifier = Notifier(
        desk.plan_of,
        desk.server_of,
        sup.bridge,
        missed=notify.missed,
        recordings=notify.recordings,
        base_url=notify.base_url,
    )
    sup.call_listeners.append(notifier.on_call)
    if sup.voicemail is not None:
        sup.voicemail.listeners.append(notifier.on_recording)
    return notifier


def make_board(sup: Supervisor, desk: MessageDesk) -> DeskBoard:
    """Issue 18: the console's live side, fed by every call report and message taken."""

    async def history(tenant: str, number: str) -> dict[str, Any]:
        return await caller_history(sup.writer.recent_calls, desk, tenant, number)

    board = DeskBoard(
        lambda t: sup.plans.plans.get(t), sup.hub.people, history, desk.store.save_contacts
    )
    sup.call_listeners.append(board.observe)
    desk.listeners.append(board.message_taken)
    return board


async def start_http(
    stack: AsyncExitStack,
    sup: Supervisor,
    voicemail: VoicemailBox,
    auth_layer: AuthLayer | None,
    http_host: str,
    more_routes: Sequence[web.RouteDef] = (),
) -> str:
    app = make_app(
        sup.writer,
        sup.metrics,
        sup.health(),
        presence_routes(sup.hub),
        [*voicemail_routes(voicemail, sup.settings.data_dir), *more_routes, *queue_api(sup)],
        feed=sup.feed,
        auth=auth_layer,
    )
    url = await stack.enter_async_context(serve(app, http_host, sup.settings.http_endpoint().port))
    log.info("dashboard on %s/dashboard, metrics on %s/metrics", url, url)
    return str(url)


def start_queues(
    sup: Supervisor, metrics: Metrics, spawn: Callable[[Coroutine[Any, Any, Any]], object]
) -> None:
    """The service's queues (issue 19): the model in the supervisor, its tick, and a check
    that every queue a plan names is defined."""
    settings = sup.settings
    if not settings.queues:
        for tenant, names in plan_queues(sup.plans).items():
            log.error("tenant %s names queues %s, but the settings define none", tenant, names)
        return
    queues = QueueService(settings.queues, sup.send_to_worker, QueueMetrics(metrics.registry))
    queues.check_plans(sup.plans)
    queues.changed = lambda: sup.feed.set_queues(queues.snapshot())  # the dashboard
    bridge = sup.bridge
    if bridge is not None:  # members' queue status, retained, beside their presence

        async def publish(topic: str, payload: bytes) -> None:
            await bridge.publish(topic, payload, retain=True)

        queues.publish = publish
        queues.topic_prefix = bridge.topics.prefix

        def command(topic: str, payload: bytes) -> None:
            spawn(queues.mqtt_command(topic, payload))

        # ``<prefix>/queue/<queue>/member/<member>/set`` with login|logout|pause|unpause
        bridge.extra_commands[f"{bridge.topics.prefix}/queue/+/member/+/set"] = command
    sup.queues = queues
    spawn(queues.run(sup.stopping))
    log.info("queues: %s", ", ".join(sorted(settings.queues)))


def queue_api(sup: Supervisor) -> list[web.RouteDef]:
    if sup.queues is None:
        return []
    return queues_routes(sup.queues.snapshot, sup.queues.set_member)


async def run_workers(tasks: asyncio.TaskGroup, sup: Supervisor) -> None:
    """Run every worker slot and the dial-plan watcher until ``sup.stopping``; then drain
    the calls for up to ``grace_seconds`` and wait until every slot has ended."""
    grace = sup.settings.grace_seconds
    forks = await start_fork_server(sup)
    runs = [tasks.create_task(w.run(), name=f"worker-{w.name}") for w in sup.workers]
    watcher = tasks.create_task(sup.watch_dialplans(), name="dialplan-watch")
    edge_stats = tasks.create_task(sup.poll_edge_stats(), name="edge-stats")
    await sup.stopping.wait()
    edge_stats.cancel()
    log.info("stopping: draining calls for up to %.0f s", grace)
    await asyncio.gather(*(w.stop(grace) for w in sup.workers))
    watcher.cancel()
    await asyncio.wait([*runs, watcher])
    if forks is not None:
        await forks.close()


async def start_fork_server(sup: Supervisor) -> ForkServer | None:
    """The zygote the worker slots fork from (``worker_start: fork``, issue 16); None (each
    worker spawned) when the setting says so or the zygote does not come up."""
    if sup.settings.worker_start != "fork":
        return None
    forks = ForkServer(sup.settings.dialplans)
    try:
        await forks.start()
    except ForkServerError as exc:
        log.warning("%s; the workers are spawned one by one", exc)
        return None
    for worker in sup.workers:
        worker.launcher = forks
    return forks
