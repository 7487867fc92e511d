"""The supervisor: one asyncio process that owns everything but SIP.

Theory of operation
-------------------
``rufweiche run`` validates the dial plans and the settings, then starts, under one
``AsyncExitStack`` (so shutdown runs in reverse order and cannot be skipped):

* the call-record writer (SQLite, :mod:`switch.records.writer`), which first closes the
  calls a previous run left open as ``aborted``;
* the presence hub (:mod:`presence.hub`), its SQLite store and, when enabled, the
  MQTT bridge (:mod:`presence.mqtt`) — a dead broker only delays MQTT, never calls;
* the HTTP server (:mod:`switch.web.app`: ``/metrics``, ``/healthz``, the API and the
  dashboard);
* the worker slots (:mod:`switch.control.pool`): pjsua2 processes that carry the calls. Each
  worker loads the dial plans itself and keeps a presence replica that the supervisor
  pushes on every change, so a routing decision needs no round trip;
* a watcher that reloads the dial plans when a file changes. A broken file keeps the
  last good set: the problems go to the log and to ``/healthz``.

Every report a worker sends about a call goes to the record writer, the metrics and
the dashboard feed, and drives "busy" presence of the person who answered. When a
worker dies, its calls are closed as ``aborted`` and the slot restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from presence.errors import PresenceError
from presence.http import presence_routes
from presence.hub import PresenceHub
from presence.model import Key, PresenceRecord
from presence.mqtt import PresenceBridge
from presence.sip import PidfPublisher
from presence.store import PresenceStore
from rules import DialPlanError, DialPlanSet, load_dialplans
from switch.access.audit import AuditLog
from switch.access.auth import AuthError
from switch.call.calllog import CallRecord
from switch.control.pool import WorkerProcess, WorkerSpec
from switch.edge.edge import (
    Edge,
    EdgeConfigError,
    EdgeError,
    EdgeSettings,
    WorkerDestination,
    write_files,
)
from switch.errors import RecordsError, VoicemailError
from switch.metrics import Metrics
from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from switch.supervisor.settings import Settings, SettingsError, endpoint, load_settings
from switch.supervisor.voicemail import VoicemailBox, voicemail_routes
from switch.web.app import Health, make_app, serve
from switch.web.dashboard import DashboardState, LiveFeed
from switch.web.guard import AuthLayer, is_loopback

log = logging.getLogger("rufweiche")

RELOAD_DEBOUNCE_MS = 300


@dataclass
class _Call:
    """What the supervisor remembers of a call in progress."""

    worker: str
    record: CallRecord
    busy: Key | None = None  # the person made busy by answering


@dataclass
class Supervisor:
    settings: Settings
    plans: DialPlanSet
    writer: RecordWriter
    metrics: Metrics
    feed: LiveFeed
    hub: PresenceHub
    bridge: PresenceBridge | None = None
    workers: list[WorkerProcess] = field(default_factory=list)
    calls: dict[str, _Call] = field(default_factory=dict)
    plan_problems: list[str] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    edge: Edge | None = None
    audit: AuditLog | None = None  # issue 9: who did what (switch/access/audit.py)
    voicemail: VoicemailBox | None = (
        None  # issue 7: records + MQTT (switch/supervisor/voicemail.py)
    )

    # -- worker reports

    async def on_worker_message(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "call":
            self._on_call(
                worker, str(message.get("phase")), CallRecord.from_dict(message["record"])
            )
        elif op in ("ready", "legs"):
            self._worker_status(worker, up=True)
            if op == "ready":
                log.info("worker %s ready on %s", worker.name, message.get("sip"))
                for tenant in self.hub.directory:
                    await worker.send(self._presence_message(tenant))
        elif op == "presence_set":
            try:
                self.hub.set(
                    str(message["tenant"]),
                    str(message["person"]),
                    str(message["state"]),
                    source="phone",
                )
            except (PresenceError, KeyError) as exc:
                log.warning("feature code from worker %s ignored: %s", worker.name, exc)
        elif op == "reload_failed":
            log.error(
                "worker %s kept its dial plans: %s", worker.name, "; ".join(message["problems"])
            )
        elif op == "reloaded":
            log.info("worker %s reloaded %s tenants", worker.name, message.get("tenants"))
        elif op == "voicemail" and self.voicemail is not None:
            tenant = str(message.get("tenant"))
            policy = getattr(self.plans.plans.get(tenant), "store_caller", "full")
            try:
                await self.voicemail.add(message, policy)
            except (VoicemailError, sqlite3.Error) as exc:
                log.error("voicemail from worker %s not recorded: %s", worker.name, exc)
        else:
            log.warning("worker %s sent unknown op %r", worker.name, op)

    def _on_call(self, worker: WorkerProcess, phase: str, record: CallRecord) -> None:
        plan = self.plans.plans.get(record.tenant) if record.tenant else None
        policy = getattr(plan, "store_caller", "full")
        try:
            self.writer.submit(phase, record, store_caller=policy)
        except ValueError as exc:
            log.error("call %s: bad report from worker %s: %s", record.call_id, worker.name, exc)
            return
        self.metrics.observe(phase, record)
        self.feed.observe(phase, record)
        call = self.calls.setdefault(record.call_id, _Call(worker.name, record))
        call.record = record
        if phase == "answered" and call.busy is None and record.tenant:
            self._mark_busy(call, record)
        elif phase == "ended":
            self.calls.pop(record.call_id, None)
            self._clear_busy(call)
            worker.calls_handled += 1
            self._maybe_recycle(worker)

    def _maybe_recycle(self, worker: WorkerProcess) -> None:
        # Only in a pool: the edge sends new calls to the other workers meanwhile. One
        # at a time, so capacity never drops by more than one worker.
        limit = self.settings.recycle_after_calls
        if not limit or worker.calls_handled < limit or len(self.workers) < 2:
            return
        if any(w.recycling for w in self.workers):
            return
        asyncio.get_running_loop().create_task(worker.recycle(self.settings.grace_seconds))

    def _mark_busy(self, call: _Call, record: CallRecord) -> None:
        if record.answered_by_service or not record.answered_by or not record.tenant:
            return
        person = record.answered_by.split(".", 1)[0]
        if person not in self.hub.directory.get(record.tenant, frozenset()):
            return
        self.hub.call_started(record.tenant, person)
        call.busy = (record.tenant, person)

    def _clear_busy(self, call: _Call) -> None:
        if call.busy is not None:
            with contextlib.suppress(PresenceError):
                self.hub.call_ended(*call.busy)
            call.busy = None

    async def on_worker_exit(self, worker: WorkerProcess, returncode: int) -> None:
        self._worker_status(worker, up=False)
        lost = [cid for cid, call in self.calls.items() if call.worker == worker.name]
        for call_id in lost:
            self._clear_busy(self.calls.pop(call_id))
        self.metrics.forget_worker_calls(lost)
        self.feed.forget_worker(worker.name)
        if returncode != 0 or lost:
            closed = await self.writer.close_aborted(worker.name)
            if closed:
                log.error("worker %s: %d calls lost, closed as aborted", worker.name, closed)

    def _worker_status(self, worker: WorkerProcess, *, up: bool) -> None:
        self.metrics.set_worker(
            worker.name, up=up, in_use=worker.legs_in_use, capacity=worker.capacity
        )
        self.feed.set_worker(
            worker.name, up=up, in_use=worker.legs_in_use, capacity=worker.capacity
        )

    # -- presence replication

    def _presence_message(self, tenant: str) -> dict[str, Any]:
        states = {person: str(state) for person, state in self.hub.snapshot(tenant).items()}
        return {"op": "presence", "tenant": tenant, "states": states}

    def on_presence_change(self, key: Key, _record: PresenceRecord | None) -> None:
        tenant = key[0]
        message = self._presence_message(tenant)
        for worker in self.workers:
            asyncio.get_running_loop().create_task(worker.send(message))
        self._show_presence(tenant)

    def _show_presence(self, tenant: str) -> None:
        people = dict(self.hub.people(tenant))  # records: .state is the shown state
        self.feed.set_presence(tenant, people)
        counts: dict[str, int] = {}
        for record in people.values():
            counts[str(record.state)] = counts.get(str(record.state), 0) + 1
        self.metrics.set_presence(tenant, counts)

    # -- dial plans

    async def watch_dialplans(self) -> None:
        from watchfiles import awatch

        paths = [p for p in self.settings.dialplans if p.exists()]
        if not paths:
            return
        async for _changes in awatch(
            *paths, debounce=RELOAD_DEBOUNCE_MS, stop_event=self.stopping, recursive=True
        ):
            await self.reload()

    async def reload(self) -> bool:
        started = time.perf_counter()
        try:
            plans = await asyncio.to_thread(load_dialplans, self.settings.dialplans)
        except DialPlanError as exc:
            self.plan_problems = [str(p) for p in exc.problems]
            log.error(
                "dial plans NOT reloaded, the last good set stays in force:\n  %s",
                "\n  ".join(self.plan_problems),
            )
            if self.audit is not None:  # issue 9
                self.audit.write("plan_reload", who="watcher", ok=False)
            return False
        old_edge = edge_settings(self.settings, self.plans, self.workers_specs())
        self.plans = plans
        self.plan_problems = []
        self.hub.replace_directory(directory_of(plans))
        for tenant in self.hub.directory:
            self._show_presence(tenant)
        message = {"op": "reload", "paths": [str(p) for p in self.settings.dialplans]}
        for worker in self.workers:
            await worker.send(message)
        new_edge = edge_settings(self.settings, plans, self.workers_specs())
        if self.edge is not None and new_edge != old_edge:
            # The edge's number and target lists are part of its configuration.
            log.info("dial plan numbers or targets changed: restarting the edge")
            await self.edge.stop()
            self.edge = Edge(new_edge)
            try:
                await self.edge.start()
            except EdgeError as exc:
                log.error("the edge did not restart: %s", exc)
        if self.audit is not None:  # issue 9
            self.audit.write("plan_reload", who="watcher", ok=True, tenants=len(plans))
        log.info(
            "dial plans reloaded: %d tenants in %.0f ms",
            len(plans),
            (time.perf_counter() - started) * 1000,
        )
        return True

    async def stop_edge(self) -> None:
        if self.edge is not None:
            await self.edge.stop()

    def workers_specs(self) -> list[WorkerSpec]:
        return [w.spec for w in self.workers]

    # -- health

    def health(self) -> Health:
        return Health(
            workers=lambda: (sum(1 for w in self.workers if w.ready.is_set()), len(self.workers)),
            database_writable=lambda: self.writer.writable,
            broker=lambda: None if self.bridge is None else self.bridge.connected.is_set(),
            detail=lambda: {
                "dial_plans": {
                    "tenants": len(self.plans),
                    "ok": not self.plan_problems,
                    "problems": self.plan_problems,
                },
                "workers": {
                    w.name: {
                        "pid": w.pid,
                        "sip": w.spec.sip,
                        "ready": w.ready.is_set(),
                        "restarts": w.restarts,
                        "recycles": w.recycles,
                        "legs_in_use": w.legs_in_use,
                    }
                    for w in self.workers
                },
                "edge": None
                if self.edge is None
                else {"pid": self.edge.pid, "running": self.edge.running},
            },
        )


def directory_of(plans: DialPlanSet) -> dict[str, set[str]]:
    return {plan.tenant: set(plan.people) for plan in plans}


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_specs(settings: Settings) -> list[WorkerSpec]:
    """One spec per worker slot. Without the edge the only worker owns the SIP address;
    behind the edge each worker gets a free loopback port, kept across restarts."""
    routes = dict(settings.routes)
    if settings.workers_listen is not None:
        base = endpoint(settings.workers_listen, 5070)
        addresses = [f"{base.host}:{base.port + i}" for i in range(settings.workers)]
    elif settings.edge_enabled:
        addresses = [f"127.0.0.1:{free_udp_port()}" for _ in range(settings.workers)]
    else:
        addresses = [str(settings.sip_endpoint())]
    if settings.edge_enabled:
        # Registered phones ("sip:201@office") are found through the edge's registrar.
        domain = str(settings.edge.get("domain", "office"))
        routes.setdefault(domain, str(settings.sip_endpoint()))
    return [
        WorkerSpec(
            name=f"w{i + 1}",
            sip=address,
            dialplans=settings.dialplans,
            routes=routes,
            trunk=settings.trunk,
            grace_seconds=settings.grace_seconds,
            # Media services (issue 7): announcements and voicemail live under data_dir.
            extra_args=("--data-dir", str(settings.data_dir)),
        )
        for i, address in enumerate(addresses)
    ]


def edge_settings(
    settings: Settings, plans: DialPlanSet, specs: Sequence[WorkerSpec]
) -> EdgeSettings:
    """The edge's settings: the operator's ``edge:`` keys, plus what the switch knows —
    the workers, the numbers the plans answer and the devices they may ring (toll-fraud
    guard: nothing else is reachable through the edge)."""
    numbers = sorted({number for plan in plans for number in plan.numbers})
    targets = sorted(
        {
            edge_target(uri)
            for plan in plans
            for person in (*plan.people.values(), *plan.service.values())
            for uri in person.devices.values()
        }
    )
    derived: dict[str, Any] = {
        "listen": str(settings.sip_endpoint()),
        "workers": [WorkerDestination(uri=f"sip:{spec.sip}") for spec in specs],
        "worker_tries": max(1, min(len(specs), 64)),  # a call may try every worker
        "public_numbers": numbers,
        "outbound_targets": targets,
        # On a loopback address only this machine can reach the edge: take its calls as
        # trunk calls unless the operator names the trunks (docs/edge.md).
        "trunk_sources": ["127.0.0.0/8"]
        if ipaddress.ip_address(settings.sip_endpoint().host).is_loopback
        else [],
        "run_dir": settings.data_dir / "edge",
        "db_path": settings.data_dir / "edge" / "edge.db",
    }
    try:
        return EdgeSettings.model_validate({**derived, **settings.edge})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise EdgeConfigError(f"edge settings: {problems}") from None


def edge_target(uri: str) -> str:
    """A device URI as the edge's outbound list names it: a number, or user@host (no port,
    no parameters: the edge compares the request URI's user and host)."""
    bare = uri.split(";", 1)[0].removeprefix("sip:").removeprefix("sips:").removeprefix("tel:")
    user, at, host = bare.partition("@")
    return f"{user}@{host.rsplit(':', 1)[0] if host.count(':') == 1 else host}" if at else bare


async def serve_switch(settings: Settings, plans: DialPlanSet) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        writer = await stack.enter_async_context(RecordWriter(settings.data_dir / RECORDS_FILE))
        store = await stack.enter_async_context(
            PresenceStore(settings.data_dir / "presence.sqlite3")
        )
        hub = PresenceHub(directory_of(plans), records=await store.load())
        await stack.enter_async_context(hub)
        await stack.enter_async_context(store.recording(hub))
        metrics = Metrics()
        feed = LiveFeed(DashboardState(window=metrics.window))
        stack.callback(feed.close)
        await feed.load_today(writer.recent_calls)  # "calls per business today" survive a restart
        sup = Supervisor(settings, plans, writer, metrics, feed, hub)
        specs = worker_specs(settings)
        for tenant in hub.directory:
            sup._show_presence(tenant)
        hub.add_listener(sup.on_presence_change)

        if settings.mqtt.enabled:
            broker = endpoint(settings.mqtt.broker, 1883)
            password = (
                settings.mqtt.password_file.read_text().strip()
                if settings.mqtt.password_file
                else None
            )
            sup.bridge = await stack.enter_async_context(
                PresenceBridge(
                    hub,
                    broker.host,
                    broker.port,
                    username=settings.mqtt.username,
                    password=password,
                    discovery=settings.mqtt.home_assistant_discovery,
                )
            )

        sup.voicemail = await stack.enter_async_context(
            VoicemailBox(settings.data_dir / RECORDS_FILE, sup.bridge)  # notices via the bridge
        )

        if settings.edge_enabled:
            edge_config = edge_settings(settings, plans, specs)
            if settings.edge_mode == "external":
                paths = write_files(edge_config)
                log.info("edge files for an external Kamailio written to %s", paths.config)
            else:
                sup.edge = Edge(edge_config)
                await sup.edge.start()
                stack.push_async_callback(sup.stop_edge)  # whichever edge runs at the end
                log.info("edge (Kamailio) listening on %s", edge_config.listen)

                # SIP presence (issue 5): PIDF to the edge, NOTIFY to phones that SUBSCRIBE.
                async def edge_rpc(method: str, *params: str) -> Any:
                    # A reload may replace sup.edge (new settings): look it up per call.
                    if sup.edge is None:
                        raise EdgeError("the edge is not running")
                    return await sup.edge.rpc(method, *params)

                await stack.enter_async_context(
                    PidfPublisher(hub, edge_rpc, domain=edge_config.domain)
                )

        # -- auth (issue 9, docs/security.md) --------------------------------------------
        # A users file next to the other data turns login on; without one, HTTP stays open
        # and is therefore bound to loopback only, whatever the settings say.
        http = settings.http_endpoint()
        http_host = http.host
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
        sup.audit = audit
        # -- end auth ----------------------------------------------------------------------
        app = make_app(
            writer,
            metrics,
            sup.health(),
            presence_routes(hub),
            voicemail_routes(sup.voicemail, settings.data_dir),
            feed=feed,
            auth=auth_layer,
        )
        url = await stack.enter_async_context(serve(app, http_host, http.port))
        log.info("dashboard on %s/dashboard, metrics on %s/metrics", url, url)

        sup.workers = [
            WorkerProcess(spec, sup.on_worker_message, sup.on_worker_exit) for spec in specs
        ]
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sup.stopping.set)
        stack.callback(_remove_signal_handlers, loop)

        async with asyncio.TaskGroup() as tasks:
            for worker in sup.workers:
                tasks.create_task(worker.run(), name=f"worker-{worker.name}")
            watcher = tasks.create_task(sup.watch_dialplans(), name="dialplan-watch")
            await sup.stopping.wait()
            log.info("stopping: draining calls for up to %.0f s", settings.grace_seconds)
            await asyncio.gather(*(w.stop(settings.grace_seconds) for w in sup.workers))
            watcher.cancel()
    log.info("stopped")
    return 0


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
    **_ignored: Any,
) -> int:
    """Entry point of ``rufweiche run``; returns the process exit code."""
    overrides: dict[str, Any] = {
        "dialplans": tuple(dialplans) or None,
        "sip": sip,
        "http": http,
        "workers": workers,
        "data_dir": data_dir,
        "log_level": log_level.upper() if log_level else None,
    }
    try:
        config = load_settings(settings, overrides)
        if mqtt is not None or no_mqtt:
            mqtt_settings = config.mqtt.model_copy(
                update={
                    "enabled": not no_mqtt,
                    **({"broker": mqtt} if mqtt is not None else {}),
                }
            )
            config = config.model_copy(update={"mqtt": mqtt_settings})
    except SettingsError as exc:
        print(f"rufweiche: {exc}")
        return 2
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
    except (RecordsError, EdgeError, AuthError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1
