"""The supervisor's state and what it does with worker reports: :class:`Supervisor`.

Every report a worker sends about a call goes to the record writer, the metrics and
the dashboard feed, and drives "busy" presence of the person who answered. When a
worker dies, its calls are closed as ``aborted`` and the slot restarts it. Presence
changes are pushed to every worker (each keeps a replica, so a routing decision needs
no round trip). Started and stopped by :mod:`switch.supervisor.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, assert_never

from presence.errors import PresenceError
from presence.hub import PresenceHub
from presence.model import Key, PresenceRecord
from presence.mqtt import PresenceBridge
from rules import DialPlanError, DialPlanSet, load_dialplans
from switch.access.audit import AuditLog
from switch.call.calllog import CallRecord
from switch.control import messages as control
from switch.control.pool import WorkerProcess, WorkerSpec
from switch.edge import Edge
from switch.edge import stats as edge_stats
from switch.edge.rtpengine import MediaRelay
from switch.errors import EdgeError, ForwardingError, RecordsError, VoicemailError
from switch.masking import loggable_number
from switch.metrics import Metrics
from switch.records.forwarding import ForwardingStore
from switch.records.writer import RecordWriter
from switch.supervisor import relayfigures, reload
from switch.supervisor.clicktocall import DialDesk
from switch.supervisor.mediastate import relay_detail
from switch.supervisor.queues import QueueService
from switch.supervisor.settings import Settings
from switch.supervisor.topology import edge_settings
from switch.supervisor.trunkstate import TrunkMonitor
from switch.supervisor.voicemail import VoicemailBox
from switch.web.app import Health
from switch.web.dashboard import LiveFeed

log = logging.getLogger("rufweiche")


@dataclass
class _Call:
    """What the supervisor remembers of a call in progress."""

    worker: str
    record: CallRecord
    busy: Key | None = None  # the person made busy by answering


@dataclass
class Supervisor:
    """What the supervisor knows at run time. Everything is given at construction (the
    parts are made, not yet started, by :mod:`switch.supervisor.app`); ``edge`` alone
    changes later, when a reload restarts the edge (:mod:`switch.supervisor.reload`)."""

    settings: Settings
    plans: DialPlanSet
    writer: RecordWriter
    metrics: Metrics
    feed: LiveFeed
    hub: PresenceHub
    specs: InitVar[Sequence[WorkerSpec]]
    # Runs a background coroutine under the supervisor's TaskGroup (app.run_switch).
    spawn: Callable[[Coroutine[Any, Any, Any]], object]
    bridge: PresenceBridge | None = None
    edge: Edge | None = None
    audit: AuditLog | None = None  # issue 9: who did what (switch/access/audit.py)
    voicemail: VoicemailBox | None = None  # issue 7: records + MQTT (supervisor/voicemail.py)
    trunks: TrunkMonitor | None = None  # issue 15: trunk registration state (trunkstate.py)
    media_relay: MediaRelay | None = None  # issue 15: rtpengine, when the switch runs it
    forwarding: ForwardingStore | None = None  # issue 18: *21*<number># (records/forwarding.py)
    queues: QueueService | None = None  # issue 19: the service's queues (queues.py)
    workers: list[WorkerProcess] = field(init=False, default_factory=list)
    calls: dict[str, _Call] = field(default_factory=dict)
    plan_problems: list[str] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Workers that died under calls: the edge still counts those calls against them until
    # the worker is back and the edge's call load is reset (issue 14 item 2).
    stale_load: set[str] = field(default_factory=set)
    # Issue 18: who else hears of every call report (the console's DeskBoard.observe).
    call_listeners: list[Callable[[str, CallRecord], None]] = field(default_factory=list)
    # The presence snapshot last sent to every worker, by tenant (on_presence_change).
    presence_sent: dict[str, control.Presence] = field(default_factory=dict)

    dialer: DialDesk = field(init=False)  # issue 17: click to call (clicktocall.py)

    def __post_init__(self, specs: Sequence[WorkerSpec]) -> None:
        self.dialer = DialDesk(self)
        self.workers = [
            WorkerProcess(spec, self.on_worker_message, self.on_worker_exit) for spec in specs
        ]

    # -- worker reports

    async def on_worker_message(self, worker: WorkerProcess, message: control.FromWorker) -> None:
        match message:
            case control.CallReport(phase, record):
                self._on_call(worker, phase, record)
            case control.Ready(sip=sip):
                self._worker_status(worker, up=True)
                log.info("worker %s ready on %s", worker.name, sip)
                if worker.name in self.stale_load:
                    await self.reset_edge_load(worker.name)
                for tenant in self.hub.directory:
                    await worker.send(self._presence_message(tenant))
                if self.forwarding is not None:
                    for tenant in list(self.forwarding.targets):
                        await worker.send(
                            control.Forwarding(tenant, self.forwarding.snapshot(tenant))
                        )
            case control.Legs():
                self._worker_status(worker, up=True)
            case control.PresenceSet(tenant, person, state):
                try:
                    self.hub.set(tenant, person, state, source="phone")
                except (PresenceError, KeyError) as exc:
                    log.warning("feature code from worker %s ignored: %s", worker.name, exc)
            case control.ForwardSet(tenant, person, number):
                if self.forwarding is None:
                    return
                try:
                    self.forwarding.set(tenant, person, number, who=person, source="phone")
                except ForwardingError as exc:
                    log.error("forwarding from worker %s not stored: %s", worker.name, exc)
            case control.ReloadFailed(problems):
                log.error("worker %s kept its dial plans: %s", worker.name, "; ".join(problems))
            case control.Reloaded(tenants):
                log.info("worker %s reloaded %s tenants", worker.name, tenants)
            case control.VoicemailFiled():
                if self.voicemail is None:
                    return
                policy = getattr(self.plans.plans.get(message.tenant), "store_caller", "full")
                try:
                    await self.voicemail.add(message.fields(), policy)
                except (VoicemailError, RecordsError) as exc:
                    log.error("voicemail from worker %s not recorded: %s", worker.name, exc)
            case control.LimitHit():  # issue 17: a stolen phone password shows up here
                self._limit_hit(worker, message)
            case control.OriginateAnswer():  # issue 17: click to call (clicktocall.py)
                self.dialer.answered(message)
            case (
                control.QueueJoin()
                | control.QueueResult()
                | control.QueueCallback()
                | control.QueueMember()
                | control.QueueCallbackDone()
            ):
                if self.queues is not None:  # issue 19
                    await self.queues.on_message(worker.name, message)
                elif isinstance(message, control.QueueJoin):
                    await worker.send(control.QueueGiveUp(message.call_id, "unknown"))
            case _:
                assert_never(message)

    def _limit_hit(self, worker: WorkerProcess, message: control.LimitHit) -> None:
        log.warning(
            "worker %s: outbound call of %s/%s stopped: %s",
            worker.name,
            message.tenant,
            message.person,
            message.reason,
        )
        if self.audit is not None:
            self.audit.write(
                "outbound_limit",
                who=message.person,
                source=worker.name,
                tenant=message.tenant,
                ok=False,
                reason=message.reason,
                call_id=message.call_id,
                call_class=message.call_class,
            )

    def _on_call(self, worker: WorkerProcess, phase: str, record: CallRecord) -> None:
        if phase == "ended" and self.media_relay is not None and relayfigures.wanted(record):
            # pjsua2 saw none of a bypassed leg's RTP: file the relay's figures instead.
            self.spawn(self._with_relay_figures(worker, record, self.media_relay))
            return
        if phase == "ended" and relayfigures.wanted(record):
            record = relayfigures.fold(record, {})  # no relay of ours: pjsua2 saw nothing
        self._file_call(worker, phase, record)

    async def _with_relay_figures(
        self, worker: WorkerProcess, record: CallRecord, relay: MediaRelay
    ) -> None:
        ng_listen = relay.settings.ng_listen
        self._file_call(worker, "ended", await relayfigures.with_relay_figures(record, ng_listen))

    def _file_call(self, worker: WorkerProcess, phase: str, record: CallRecord) -> None:
        plan = self.plans.plans.get(record.tenant) if record.tenant else None
        policy = getattr(plan, "store_caller", "full")
        try:
            self.writer.submit(phase, record, store_caller=policy)
        except ValueError as exc:
            log.error("call %s: bad report from worker %s: %s", record.call_id, worker.name, exc)
            return
        self.metrics.observe(phase, record)
        self.feed.observe(phase, record)
        for listener in self.call_listeners:
            listener(phase, record)
        call = self.calls.setdefault(record.call_id, _Call(worker.name, record))
        call.record = record
        if phase == "answered" and self.queues is not None:  # issue 19: skip busy members
            uri = next((leg.uri for leg in record.legs if leg.target == record.answered_by), None)
            if uri is not None:
                self.queues.call_answered(record.call_id, uri)
        if phase == "answered" and call.busy is None and record.tenant:
            self._mark_busy(call, record)
        elif phase == "ended":
            self.calls.pop(record.call_id, None)
            self._clear_busy(call)
            if self.queues is not None:  # issue 19: a member's call is over, or a waiter left
                self.queues.call_ended(record.call_id, record.outcome)
                self.spawn(self.queues.dispatch())
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
        self.spawn(worker.recycle(self.settings.grace_seconds))

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
        if self.edge is not None and (returncode != 0 or lost):
            self.stale_load.add(worker.name)
        if self.queues is not None:  # issue 19: its waiting callers are gone
            gone = self.queues.worker_lost(worker.name)
            if gone:
                log.error("worker %s: %d waiting queue callers lost", worker.name, gone)
            await self.queues.dispatch()
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

    # -- the console's "put through" (issue 18)

    def call_record(self, call_id: str) -> CallRecord | None:
        """The last report of a call in progress (None: no worker holds it)."""
        call = self.calls.get(call_id)
        return None if call is None else call.record

    async def transfer_call(self, call_id: str, target: str, by: str | None) -> str:
        """Ask the worker holding ``call_id`` to put it through to ``target``: ``"sent"``,
        ``"unknown"`` (no such call), ``"not_bridged"`` (nobody answered it yet, or it
        is in a transfer) or ``"unreachable"`` (its worker is not connected)."""
        call = self.calls.get(call_id)
        if call is None:
            return "unknown"
        record = call.record
        if (
            record.answered_by is None
            or record.answer_relayed_ns is None
            or (record.transferred_to is not None and record.transfer_outcome is None)
        ):
            return "not_bridged"
        worker = next((w for w in self.workers if w.name == call.worker), None)
        if worker is None or not await worker.send(control.TransferCall(call_id, target, by)):
            return "unreachable"
        log.info("call %s: put through to %s by %s (worker %s)", call_id,
                 loggable_number(target), by, call.worker)  # fmt: skip
        return "sent"

    # -- presence replication

    def _presence_message(self, tenant: str) -> control.Presence:
        states = {person: str(state) for person, state in self.hub.snapshot(tenant).items()}
        return control.Presence(tenant, states)

    def on_presence_change(self, key: Key, _record: PresenceRecord | None) -> None:
        tenant = key[0]
        message = self._presence_message(tenant)
        # Workers route by the states alone: a change that leaves them as they were (a
        # second call of someone already on the phone, a note, a device) is not sent.
        # Every call changes its person's record twice; sent each time to every worker
        # that woke 108 workers 20 times a second at 10 new calls/s (issue 16). A worker
        # that starts gets the snapshot on Ready, whatever was sent before.
        if self.presence_sent.get(tenant) != message:
            self.presence_sent[tenant] = message
            for worker in self.workers:
                self.spawn(worker.send(message))
        self._show_presence(tenant)

    def _show_presence(self, tenant: str) -> None:
        people = dict(self.hub.people(tenant))  # records: .state is the shown state
        self.feed.set_presence(tenant, people)
        counts: dict[str, int] = {}
        for record in people.values():
            counts[str(record.state)] = counts.get(str(record.state), 0) + 1
        self.metrics.set_presence(tenant, counts)

    # -- call forwarding (issue 18)

    def on_forwarding_change(
        self, tenant: str, person: str, number: str | None, who: str | None, source: str
    ) -> None:
        """A forwarding was set or cleared: every worker gets the tenant's new snapshot (the
        one that reported it too: the store is the truth), and the audit log has it."""
        if self.forwarding is None:
            return
        message = control.Forwarding(tenant, self.forwarding.snapshot(tenant))
        for worker in self.workers:
            self.spawn(worker.send(message))
        if self.audit is not None:
            event = "forwarding_set" if number is not None else "forwarding_cleared"
            self.audit.write(event, who=who, source=source, tenant=tenant, person=person,
                             number=number)  # fmt: skip
        log.info("forwarding tenant=%s: %s -> %s (%s)", tenant, person,
                 "cleared" if number is None else loggable_number(number), source)  # fmt: skip

    # -- dial plans

    async def watch_dialplans(self) -> None:
        await reload.watch_dialplans(self)

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
        if self.queues is not None:  # issue 19: a plan naming a queue the settings lack
            self.queues.check_plans(plans)
        self.hub.replace_directory(directory_of(plans))
        for tenant in self.hub.directory:
            self._show_presence(tenant)
        message = control.Reload(tuple(str(p) for p in self.settings.dialplans))
        for worker in self.workers:
            await worker.send(message)
        new_edge = edge_settings(self.settings, plans, self.workers_specs())
        if self.edge is not None and new_edge != old_edge:
            await reload.restart_edge(self, new_edge)
        if self.audit is not None:  # issue 9
            self.audit.write("plan_reload", who="watcher", ok=True, tenants=len(plans))
        log.info(
            "dial plans reloaded: %d tenants in %.0f ms",
            len(plans),
            (time.perf_counter() - started) * 1000,
        )
        return True

    async def reset_edge_load(self, name: str) -> None:
        """The restarted worker ``name`` holds no call: make the edge forget the calls it
        counted for it (the dispatcher's call load), or it stays "full" until their BYEs
        pass or ds_hash_expire ends them. The reload resets every worker's load; calls of
        the others stop counting until they end, and a worker that is really full still
        refuses the next INVITE itself (486 from pjsua, which the edge takes as "full")."""
        self.stale_load.discard(name)
        try:
            await edge_stats.reset_load(self.edge_rpc)
        except EdgeError as exc:
            log.warning("edge: call load not reset after worker %s restarted: %s", name, exc)
            return
        log.info("edge: call load reset after worker %s restarted", name)

    async def poll_edge_stats(self, interval: float = 5.0) -> None:
        """Copy the edge's malformed-request count into the metrics every ``interval`` s."""
        while True:
            if self.edge is not None and self.edge.running:
                try:
                    self.metrics.set_edge_malformed(await edge_stats.malformed_total(self.edge_rpc))
                except EdgeError as exc:
                    log.debug("edge statistics not read: %s", exc)
            await asyncio.sleep(interval)

    async def stop_edge(self) -> None:
        if self.edge is not None:
            await self.edge.stop()

    async def edge_rpc(self, method: str, *params: str) -> Any:
        """An RPC to whichever edge runs now (a reload may have replaced it)."""
        if self.edge is None:
            raise EdgeError("the edge is not running")
        return await self.edge.rpc(method, *params)

    async def send_to_worker(self, name: str, message: control.ToWorker) -> None:
        """A message to the worker called ``name`` (the queues' offers and updates)."""
        for worker in self.workers:
            if worker.name == name:
                await worker.send(message)
                return
        if isinstance(message, control.QueueCallBack) and self.workers:
            await self.workers[0].send(message)  # a callback needs no particular worker
            return
        log.warning("no worker %s for %s", name, control.op_of(message))

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
                "records": self.writer.health(),  # issue 14: durable / backlog / lost
                "edge": None
                if self.edge is None
                else {"pid": self.edge.pid, "running": self.edge.running},
                "trunks": {} if self.trunks is None else self.trunks.detail(),
                "media_relay": relay_detail(self.media_relay),
            },
        )


def directory_of(plans: DialPlanSet) -> dict[str, set[str]]:
    return {plan.tenant: set(plan.people) for plan in plans}
