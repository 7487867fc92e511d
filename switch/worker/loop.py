"""One B2BUA worker process: pjsua2 endpoint + dial plans + call flows, one thread.

``python -m switch.worker --sip 127.0.0.1:5060 --dialplans dialplans/ [--control-fd N]``

Theory of operation
-------------------
The main thread owns the pjsua2 endpoint (switch/pjsua/) and runs :meth:`Worker.run`:
``poll`` (``libHandleEvents``, at most until the next call-flow timer and never longer
than :data:`MAX_POLL_MS` so that control messages are picked up) returns leg events;
each becomes a call-flow event (:mod:`switch.call.events`) for the :class:`CallFlow` of its
call, and the flow's commands are carried out on the endpoint right away. Nothing is
answered inside a pjsua2 callback: a new INVITE only becomes an :class:`IncomingInvite`,
and the loop answers or rejects it after ``libHandleEvents`` has returned.

Capacity is counted here, not discovered by a failing ``makeCall``: the process has
:data:`~switch.pjsua.endpoint.MAX_LEGS` legs; an admitted call reserves one outbound leg
at once, so a call either gets the legs it needs or a 503 with Retry-After.

The control channel (switch/control/messages.py) is served by two small threads: a reader that
queues decoded messages for the loop, and a writer that takes encoded lines off a queue,
so the SIP hot path never blocks on the socket.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rules import (
    CallInfo,
    DialPlan,
    DialPlanError,
    DialPlanSet,
    decide,
    load_dialplans,
    normalize_number,
)
from rules.decision import Decision, Failure, Final, FinalKind
from rules.presence import PresenceState
from switch.call.callflow import CallFlow, MediaOptions
from switch.call.calllog import CallRecord, LegRecord
from switch.call.events import (
    CALLER,
    AnswerAndBridge,
    AnswerCaller,
    CallerGone,
    Cancel,
    CancelTimer,
    Command,
    ConfirmDigit,
    Dial,
    Event,
    Finished,
    HangUpCaller,
    IncomingCall,
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegRinging,
    OpenEarlyMedia,
    Outcome,
    PlayPrompt,
    RejectCaller,
    RelayRinging,
    Shutdown,
    StartTimer,
    TimerFired,
)
from switch.call.sipheaders import (
    UnroutableTarget,
    asserted_identity,
    classify,
    diversion,
    from_header,
    history_info,
    parse_name_addr,
    reason_header,
    resolve_target,
)
from switch.control import messages as control
from switch.masking import loggable_number
from switch.pjsua.endpoint import MAX_LEGS, EndpointConfig, LegUnavailable, SipEndpoint
from switch.worker.media import CallContext, MediaServices, tenant_media
from switch.worker.seam import (
    IncomingInvite,
    LegConnected,
    LegDigit,
    LegEnded,
    LegEvent,
    LegProgress,
)

log = logging.getLogger("switch.worker")

MAX_POLL_MS = 100
"""Longest ``libHandleEvents`` wait: bounds control-message latency, costs ~no idle CPU."""
RETRY_AFTER_S = 5
FEATURE_HANGUP_S = 1.0
SHUTDOWN_DRAIN_S = 2.0


class WorkerError(Exception):
    """The worker cannot start (bad arguments, dial plans, SIP address)."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    name: str
    host: str
    port: int
    dialplans: tuple[Path, ...]
    routes: Mapping[str, str] = field(default_factory=dict)
    trunk: str | None = None
    grace: float = 10.0
    # pjsua itself answers 486 (statelessly, before the application sees the INVITE)
    # when all its call slots hold legs. Keeping one slot spare makes every overflow
    # call get our 503 + Retry-After instead, at the price of one bridged call less.
    spare_leg: bool = False
    # Media services (announcements, voicemail, answer confirmation) keep their files
    # here; without it VOICEMAIL/ANNOUNCEMENT finals reject and confirm is not asked.
    data_dir: Path | None = None

    @property
    def sip(self) -> str:
        return f"{self.host}:{self.port}"


# ----------------------------------------------------------------------- control channel


class ControlChannel:
    """Newline-delimited JSON to and from the supervisor, off the SIP thread."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock
        self.inbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self.closed = threading.Event()

    @classmethod
    def from_fd(cls, fd: int | None) -> ControlChannel:
        if fd is None:
            return cls(None)
        sock = socket.socket(fileno=fd)
        return cls(sock)

    def start(self) -> None:
        if self._sock is None:
            return
        for target, name in ((self._read, "control-reader"), (self._write, "control-writer")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; a :class:`CallRecord` under "record" is encoded by the writer.

        Encoding a record (``asdict`` + JSON) costs a few hundred microseconds: the SIP
        thread only hands over a snapshot, the writer thread pays for the rest.
        """
        if self._sock is None:
            log.debug("control (standalone): %s", message.get("op"))
            return
        self._outbox.put(message)

    def close(self, timeout: float = 2.0) -> None:
        if self._sock is None:
            return
        self._outbox.put(None)
        for thread in self._threads:
            if thread.name == "control-writer":
                thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def _read(self) -> None:
        assert self._sock is not None
        buffer = b""
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        self.inbox.put(control.decode(line))
                    except control.ControlProtocolError as exc:
                        log.warning("control: %s", exc)
                if len(buffer) > control.MAX_LINE:
                    log.warning("control: line over %d bytes dropped", control.MAX_LINE)
                    buffer = b""
        except OSError:
            pass
        self.closed.set()

    def _write(self) -> None:
        assert self._sock is not None
        while True:
            message = self._outbox.get()
            if message is None:
                return
            record = message.get("record")
            if isinstance(record, CallRecord):
                message = {**message, "record": record.to_dict()}
            try:
                self._sock.sendall(control.encode(message))
            except OSError:
                self.closed.set()
                return


# ----------------------------------------------------------------------- calls


@dataclass(slots=True)
class ActiveCall:
    """The worker's bookkeeping for one incoming call (the flow holds the logic)."""

    key: int
    caller_handle: int
    record: CallRecord
    flow: CallFlow | None = None
    decision: Decision | None = None
    legs: dict[int, int] = field(default_factory=dict)  # leg -> handle
    live: set[int] = field(default_factory=set)  # handles not ended yet
    leg_records: dict[int, LegRecord] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)  # legs the flow cancelled
    reserved: int = 0  # outbound legs held for this call, not dialled yet
    caller_answered: bool = False
    caller_rejected: bool = False
    finished: Finished | None = None
    feature: bool = False
    dictation_person: str | None = None  # the dictation box: who dictates
    step_of_target: dict[str, int] = field(default_factory=dict)

    @property
    def tenant(self) -> str:
        return self.record.tenant or "-"


class Worker:
    """Drives call flows on one :class:`SipEndpoint`; everything on the calling thread."""

    def __init__(
        self,
        config: WorkerConfig,
        endpoint: SipEndpoint,
        plans: DialPlanSet,
        channel: ControlChannel,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        media: MediaServices | None = None,
    ) -> None:
        self.media = media
        self.config = config
        self.endpoint = endpoint
        self.plans = plans
        self.channel = channel
        self._clock = clock
        self.presence: dict[str, dict[str, PresenceState]] = {}
        self._calls: dict[int, ActiveCall] = {}
        self._by_handle: dict[int, tuple[ActiveCall, int]] = {}
        self._keys = itertools.count(1)
        self._timer_seq = itertools.count()
        self._timers: list[tuple[int, int, int, str]] = []  # (deadline_ns, seq, call, name)
        self._timer_ids: dict[tuple[int, str], int] = {}
        self._pending: deque[tuple[ActiveCall, Event]] = deque()
        self._reserved = 0
        self._draining = False
        self._stop_at: int | None = None
        self._stopping = False
        self._last_legs = -1

    # ------------------------------------------------------------------ loop

    def request_stop(self, grace: float | None = None) -> None:
        """Take no new calls; end the process once calls are done or ``grace`` runs out."""
        grace = self.config.grace if grace is None else grace
        self._draining = True
        deadline = time.monotonic_ns() + int(grace * 1e9)
        self._stop_at = deadline if self._stop_at is None else min(self._stop_at, deadline)

    def run(self) -> int:
        self.channel.send(
            {
                "op": "ready",
                "worker": self.config.name,
                "sip": self.config.sip,
                "capacity": self.capacity,
            }
        )
        self._report_legs()
        while True:
            for event in self.endpoint.poll(self._poll_ms()):
                self._on_leg_event(event)
            self._run_pending()
            self._fire_timers()
            self._read_control()
            self._report_legs()
            if self._stop_at is not None and self._maybe_stop():
                return 0

    def _poll_ms(self) -> int:
        if self._pending:
            return 0
        if not self._timers:
            return MAX_POLL_MS
        wait_ms = (self._timers[0][0] - time.monotonic_ns()) // 1_000_000 + 1
        return int(max(0, min(MAX_POLL_MS, wait_ms)))

    def _maybe_stop(self) -> bool:
        assert self._stop_at is not None
        if not self._calls:
            return True
        if time.monotonic_ns() < self._stop_at:
            return False
        if not self._stopping:
            self._stopping = True
            log.warning(
                "worker %s: grace over, ending %d calls", self.config.name, len(self._calls)
            )
            for call in list(self._calls.values()):
                at = time.monotonic_ns()
                if call.flow is not None and call.finished is None:
                    self._feed(call, Shutdown(at))
                self._end_everything(call)
            self._stop_at = time.monotonic_ns() + int(SHUTDOWN_DRAIN_S * 1e9)
            return False
        return True  # the last BYEs had their chance; close() hangs up the rest

    @property
    def capacity(self) -> int:
        """Legs this worker fills with calls; one fewer than pjsua's with ``spare_leg``."""
        return MAX_LEGS - (1 if self.config.spare_leg else 0)

    def _free_legs(self) -> int:
        return self.capacity - self.endpoint.legs_in_use - self._reserved

    def _report_legs(self) -> None:
        in_use = self.endpoint.legs_in_use
        if in_use != self._last_legs:
            self._last_legs = in_use
            self.channel.send({"op": "legs", "in_use": in_use, "capacity": self.capacity})

    # ------------------------------------------------------------------ control

    def _read_control(self) -> None:
        while True:
            try:
                message = self.channel.inbox.get_nowait()
            except queue.Empty:
                break
            try:
                self._on_control(message)
            except Exception:
                log.exception("control message %r failed", message.get("op"))
        if self.channel.closed.is_set() and not self._draining:
            log.warning("worker %s: control channel closed, draining", self.config.name)
            self.request_stop()

    def _on_control(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "presence":
            states = {
                str(person): PresenceState(state)
                for person, state in dict(message.get("states", {})).items()
            }
            self.presence[str(message["tenant"])] = states
        elif op == "reload":
            paths = [Path(p) for p in message.get("paths", self.config.dialplans)]
            try:
                plans = load_dialplans(paths)
            except DialPlanError as exc:
                self.channel.send({"op": "reload_failed", "problems": [str(exc)]})
                return
            self.plans = plans
            if self.media is not None:
                self.media.prepare(plans)  # new announcements are made in the background
            self.channel.send({"op": "reloaded", "tenants": len(plans)})
        elif op == "drain":
            self._draining = True
        elif op == "stop":
            grace = message.get("grace")
            self.request_stop(float(grace) if grace is not None else None)
        else:
            log.warning("control: unknown op %r", op)

    # ------------------------------------------------------------------ timers

    def _start_timer(self, call: ActiveCall, name: str, seconds: float) -> None:
        seq = next(self._timer_seq)
        self._timer_ids[(call.key, name)] = seq
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        heapq.heappush(self._timers, (deadline, seq, call.key, name))

    def _cancel_timer(self, call: ActiveCall, name: str) -> None:
        self._timer_ids.pop((call.key, name), None)  # the heap entry is skipped when due

    def _fire_timers(self) -> None:
        now = time.monotonic_ns()
        while self._timers and self._timers[0][0] <= now:
            _, seq, key, name = heapq.heappop(self._timers)
            if self._timer_ids.get((key, name)) != seq:
                continue
            del self._timer_ids[(key, name)]
            call = self._calls.get(key)
            if call is None:
                continue
            if call.feature:
                self.endpoint.end(call.caller_handle)
                continue
            self._feed(call, TimerFired(name, now))
            self._run_pending()

    # ------------------------------------------------------------------ leg events

    def _on_leg_event(self, event: LegEvent) -> None:
        if isinstance(event, IncomingInvite):
            try:
                self._on_invite(event)
            except Exception:
                # Never leave an INVITE unanswered: the caller would hang until its timer B.
                log.exception("call %s: INVITE handling failed", event.call_id)
                entry = self._by_handle.get(event.handle)
                if entry is None:
                    self.endpoint.reject(event.handle, 500, "Server Internal Error")
                else:
                    self._execute(
                        entry[0],
                        [Finished(Outcome.ABORTED, None, "switch", 500, time.monotonic_ns())],
                    )
            return
        try:
            entry = self._by_handle.get(event.handle)
            if entry is None:
                return
            call, leg = entry
            if isinstance(event, LegProgress):
                self._on_progress(call, leg, event)
            elif isinstance(event, LegConnected):
                self._on_connected(call, leg, event)
            elif isinstance(event, LegEnded):
                self._on_ended(call, leg, event)
            elif isinstance(event, LegDigit) and leg != CALLER and leg not in call.cancelled:
                self._feed(call, ConfirmDigit(leg, event.digit, event.at))
        except Exception:
            # A bug in one call must not take the other calls of this process down.
            log.exception("leg event %r failed", type(event).__name__)

    def _on_invite(self, invite: IncomingInvite) -> None:
        key = next(self._keys)
        caller_uri = invite.asserted or invite.from_uri
        caller_user = parse_name_addr(caller_uri).user if invite.asserted else invite.from_user
        caller = _caller_number(caller_user, caller_uri)
        called_raw = invite.called_user or ""
        called = _normalize(called_raw)
        record = CallRecord(
            call_id=invite.call_id,
            tenant=None,
            called=called,
            caller=caller,
            rule=None,
            worker=self.config.name,
            started_wall=time.time(),
            invite_in_ns=invite.at,
        )
        call = ActiveCall(key=key, caller_handle=invite.handle, record=record)
        call.live.add(invite.handle)
        self._calls[key] = call
        self._by_handle[invite.handle] = (call, CALLER)

        if called_raw.startswith("*"):
            self._feature_code(call, called_raw, invite)
            return
        plan = self.plans.for_number(called) if called else None
        if plan is not None:
            record.tenant = plan.tenant
        if self._draining or self._free_legs() < 1:
            # The INVITE itself holds a leg; without one more free, nothing can be bridged.
            log.warning(
                "call %s tenant=%s: %s, 503",
                invite.call_id,
                record.tenant,
                "draining" if self._draining else "no free leg",
            )
            self._reject(call, 503, "Service Unavailable", retry=True)
            return
        if plan is None:
            self._reject(call, 404, "Not Found")
            return
        record.tenant = plan.tenant
        decision = decide(
            plan,
            CallInfo(called, caller),
            self.presence.get(plan.tenant, {}),
            self._clock(),
        )
        record.decision_ns = time.monotonic_ns()
        record.rule = decision.rule
        call.decision = decision
        for index, step in enumerate(decision.steps):
            for target in step.targets:
                call.step_of_target.setdefault(target.ref, index)
        log.info(
            "call %s tenant=%s from %s to %s: rule %s, %d steps",
            invite.call_id,
            plan.tenant,
            loggable_number(caller),
            loggable_number(called),
            decision.rule,
            len(decision.steps),
        )
        if decision.steps:
            call.reserved = 1
            self._reserved += 1
        call.flow = CallFlow(
            IncomingCall(
                call_id=invite.call_id,
                called=called,
                caller=caller,
                caller_display=invite.from_display,
                at=invite.at,
            ),
            decision,
            None if self.media is None else self.media.options(plan.tenant),
        )
        self._execute(call, call.flow.start(time.monotonic_ns()))
        self._send_record(call, "started")  # after the INVITEs left: not on the hot path
        self._run_pending()

    def _on_progress(self, call: ActiveCall, leg: int, event: LegProgress) -> None:
        if leg == CALLER or leg in call.cancelled:
            return
        leg_record = call.leg_records.get(leg)
        if leg_record is not None and leg_record.first_18x_in_ns is None:
            leg_record.first_18x_in_ns = event.at
        if call.record.first_18x_in_ns is None:
            call.record.first_18x_in_ns = event.at
        self._feed(call, LegRinging(leg, event.status, event.early_media, event.at))

    def _on_connected(self, call: ActiveCall, leg: int, event: LegConnected) -> None:
        if leg == CALLER:
            return  # the ACK of our 200
        leg_record = call.leg_records.get(leg)
        if leg_record is not None:
            leg_record.answered_ns = event.at
        if leg in call.cancelled or call.finished is not None:
            # A 200 that crossed our CANCEL (RFC 3261 §9.1): the dialog exists, end it.
            self.endpoint.end(call.legs[leg])
            return
        call.record.answer_in_ns = event.at
        self._feed(call, LegAnswered(leg, event.at))

    def _on_ended(self, call: ActiveCall, leg: int, event: LegEnded) -> None:
        call.live.discard(event.handle)
        self._by_handle.pop(event.handle, None)
        if leg == CALLER:
            call.record.media = event.media
            if call.flow is not None and call.finished is None:
                cancelled = not call.caller_answered
                self._feed(call, CallerGone(cancelled=cancelled, at=event.at))
        else:
            leg_record = call.leg_records.get(leg)
            if leg_record is not None:
                leg_record.ended_ns = event.at
                leg_record.media = event.media
                # An answered leg counts as 200 however it ended; one we cancelled as 487
                # (RFC 3261 §9.1), whatever pjsua last saw on it.
                if event.connected:
                    leg_record.status = 200
                elif leg in call.cancelled:
                    leg_record.status = 487
                else:
                    leg_record.status = event.status
                leg_record.reason = event.reason
            if leg not in call.cancelled and call.finished is None:
                if event.connected:
                    self._feed(call, LegHungUp(leg, event.at))
                else:
                    failure = classify(event.status)
                    self._feed(call, LegFailed(leg, event.status, event.reason, failure, event.at))
        self._run_pending()
        self._maybe_close(call)

    # ------------------------------------------------------------------ flow driving

    def _feed(self, call: ActiveCall, event: Event) -> None:
        if call.flow is None or call.finished is not None:
            return
        try:
            commands = call.flow.handle(event)
        except Exception:
            # A flow that cannot go on must not leave its legs (and the worker's
            # shutdown) waiting: end the call here, as the switch.
            log.exception("call %s tenant=%s: call flow failed", call.record.call_id, call.tenant)
            commands = [
                Finished(Outcome.ABORTED, None, "switch", 500, time.monotonic_ns()),
            ]
        self._execute(call, commands)

    def _run_pending(self) -> None:
        if self.media is not None:  # prompts that reached their end (switch/worker/media.py)
            for key, media_event in self.media.ended():
                media_call = self._calls.get(key)
                if media_call is not None:
                    self._pending.append((media_call, media_event))
        while self._pending:
            call, event = self._pending.popleft()
            self._feed(call, event)
            self._maybe_close(call)

    def _execute(self, call: ActiveCall, commands: Iterable[Command]) -> None:
        for command in commands:
            try:
                self._carry_out(call, command)
            except Exception:
                log.exception("call %s: command %r failed", call.record.call_id, command)
        if call.finished is not None:
            self._end_everything(call)
            self._maybe_close(call)

    def _carry_out(self, call: ActiveCall, command: Command) -> None:
        if isinstance(command, Dial):
            self._dial(call, command)
        elif isinstance(command, Cancel):
            call.cancelled.add(command.leg)
            handle = call.legs.get(command.leg)
            if handle is not None and handle in call.live:
                self.endpoint.end(handle)
        elif isinstance(command, RelayRinging):
            self._relay_ringing(call, command)
        elif isinstance(command, AnswerAndBridge):
            handle = call.legs[command.leg]
            if self.endpoint.answer(call.caller_handle):
                call.caller_answered = True
                call.record.answer_relayed_ns = time.monotonic_ns()
                self.endpoint.bridge(call.caller_handle, handle)
                target = call.leg_records.get(command.leg)
                if target is not None:
                    call.record.answered_by = target.target
                    call.record.answered_by_service = target.is_service
                self._send_record(call, "answered")
        elif isinstance(command, RejectCaller):
            headers = [("Reason", reason_header(command.status, command.reason))]
            self._reject(call, command.status, command.reason, headers=headers)
        elif isinstance(command, OpenEarlyMedia):
            # 183 with our SDP answer (RFC 3960): the caller hears the welcome unanswered.
            if not (call.caller_answered or call.caller_rejected):
                self.endpoint.provisional(call.caller_handle, 183)
        elif isinstance(command, AnswerCaller):
            # The switch itself takes the call (announcement, voicemail): a 200, no bridge.
            if self.endpoint.answer(call.caller_handle):
                call.caller_answered = True
        elif self.media is not None and self.media.handles(command):
            if isinstance(command, PlayPrompt) and command.leg != CALLER:
                # A callee asked to confirm may still be bridged with the caller for its
                # early media (183): the caller must not hear that side meanwhile.
                handle = call.legs.get(command.leg)
                if handle is not None:
                    self.endpoint.unbridge(handle)
            context = CallContext(
                key=call.key,
                tenant=call.tenant,
                call_id=call.record.call_id,
                caller=call.record.caller,
                called=call.record.called,
                caller_handle=call.caller_handle,
                handles=call.legs,
                person=call.dictation_person,
            )
            for media_event in self.media.carry_out(context, command):
                self._pending.append((call, media_event))
        elif isinstance(command, HangUpCaller):
            self.endpoint.end(call.caller_handle)
        elif isinstance(command, StartTimer):
            self._start_timer(call, command.timer, command.seconds)
        elif isinstance(command, CancelTimer):
            self._cancel_timer(call, command.timer)
        elif isinstance(command, Finished):
            call.finished = command
            record = call.record
            record.outcome = str(command.outcome)
            record.hung_up_by = command.hung_up_by
            record.sip_status = command.sip_status
            record.ended_ns = command.at
            record.final_action = command.final

    def _dial(self, call: ActiveCall, dial: Dial) -> None:
        target = dial.target
        leg_record = LegRecord(
            leg=dial.leg,
            target=target.ref,
            uri=target.uri,
            owner=target.owner,
            is_service=target.is_service,
            step=call.step_of_target.get(target.ref, 0),
        )
        call.leg_records[dial.leg] = leg_record
        call.record.legs.append(leg_record)
        if call.reserved > 0:
            call.reserved -= 1
            self._reserved -= 1
        elif self._free_legs() < 1:
            self._leg_failed(call, dial.leg, 503, "No free leg in this worker")
            return
        host = self.config.sip
        try:
            uri = resolve_target(target.uri, self.config.routes, self.config.trunk)
        except UnroutableTarget as exc:
            log.warning("call %s tenant=%s: %s", call.record.call_id, call.tenant, exc)
            self._leg_failed(call, dial.leg, 404, "No route to target")
            return
        headers = [("Diversion", diversion(dial.diverted_from, host))]
        headers.append(("History-Info", history_info(dial.diverted_from, uri, host)))
        if dial.caller:
            headers.append(("P-Asserted-Identity", asserted_identity(dial.caller, host)))
        try:
            handle = self.endpoint.dial(uri, from_header(dial.display, dial.caller, host), headers)
        except LegUnavailable as exc:
            log.warning("call %s tenant=%s: %s", call.record.call_id, call.tenant, exc)
            self._leg_failed(call, dial.leg, exc.sip_status, "INVITE could not be sent")
            return
        leg_record.invite_out_ns = time.monotonic_ns()
        call.legs[dial.leg] = handle
        call.live.add(handle)
        self._by_handle[handle] = (call, dial.leg)

    def _leg_failed(self, call: ActiveCall, leg: int, status: int, reason: str) -> None:
        record = call.leg_records.get(leg)
        if record is not None:
            record.status, record.reason = status, reason
        failure = Failure.NO_ANSWER if status == 408 else Failure.UNREACHABLE
        # Fed after the current command list, never into the flow while it is returning.
        self._pending.append((call, LegFailed(leg, status, reason, failure, time.monotonic_ns())))

    def _relay_ringing(self, call: ActiveCall, command: RelayRinging) -> None:
        if call.caller_answered or call.caller_rejected:
            return
        media_leg = command.media_from_leg
        handle = call.legs.get(media_leg) if media_leg is not None else None
        if command.status == 183 and handle is not None and handle in call.live:
            # Early media (RFC 3960): our 183 carries an SDP answer, and the target's
            # early audio flows through the bridge before anyone answers.
            self.endpoint.provisional(call.caller_handle, 183)
            self.endpoint.bridge(call.caller_handle, handle)
        else:
            self.endpoint.provisional(call.caller_handle, 180)
        if call.record.first_18x_relayed_ns is None:
            call.record.first_18x_relayed_ns = time.monotonic_ns()

    def _reject(
        self,
        call: ActiveCall,
        status: int,
        reason: str,
        *,
        retry: bool = False,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        if call.caller_answered or call.caller_rejected:
            return
        call.caller_rejected = True
        extra = list(headers)
        if retry:
            extra.append(("Retry-After", str(RETRY_AFTER_S)))  # RFC 3261 §20.33
        self.endpoint.reject(call.caller_handle, status, reason, extra)
        if call.flow is None:
            call.record.outcome = "rejected"
            call.record.sip_status = status
            call.record.ended_ns = time.monotonic_ns()
            call.finished = Finished(
                outcome=Outcome.REJECTED,
                answered_leg=None,
                hung_up_by="switch",
                sip_status=status,
                at=time.monotonic_ns(),
            )
        self._release_reservation(call)

    def _release_reservation(self, call: ActiveCall) -> None:
        self._reserved -= call.reserved
        call.reserved = 0

    def _end_everything(self, call: ActiveCall) -> None:
        """Safety net once a flow finished (or the worker stops): no leg outlives its call."""
        self._release_reservation(call)
        for leg, handle in call.legs.items():
            if handle in call.live:
                call.cancelled.add(leg)
                self.endpoint.end(handle)
        if call.caller_handle in call.live:
            if call.caller_answered:
                self.endpoint.end(call.caller_handle)
            elif not call.caller_rejected:
                status = call.finished.sip_status if call.finished else 500
                status = status if status >= 300 else 500
                self._reject(call, status, "Call ended")

    def _maybe_close(self, call: ActiveCall) -> None:
        if call.key not in self._calls or call.live:
            return
        if call.finished is None and call.flow is not None:
            return
        del self._calls[call.key]
        if self.media is not None:
            self.media.call_ended(call.key)
        for name in [n for (k, n) in self._timer_ids if k == call.key]:
            self._timer_ids.pop((call.key, name), None)
        if call.feature or call.dictation_person is not None:
            # A feature code is not a call; it shows up as a presence change. A dictation
            # is filed as such (switch/supervisor/voicemail.py), not counted as a missed call.
            return
        if call.record.ended_ns is None:
            call.record.ended_ns = time.monotonic_ns()
        self._send_record(call, "ended")

    def _send_record(self, call: ActiveCall, phase: str) -> None:
        # A snapshot (the record keeps changing); the writer thread encodes it.
        record = call.record
        snapshot = replace(record, legs=[replace(leg) for leg in record.legs])
        self.channel.send({"op": "call", "phase": phase, "record": snapshot})

    # ------------------------------------------------------------------ feature codes

    def _feature_code(self, call: ActiveCall, code: str, invite: IncomingInvite) -> None:
        call.feature = True
        owner = None
        for uri in _device_uris(invite.from_uri, self.config.routes):
            owner = self.plans.device_owner(uri)
            if owner is not None:
                break
        if owner is None:
            self._reject(call, 404, "Unknown Device")
            return
        plan, person = owner
        settings = tenant_media(plan)
        if code == settings.dictation_code and code not in plan.feature_codes:
            self._dictate(call, plan, person, settings.dictation_options(), invite)
            return
        state = plan.feature_codes.get(code)
        if state is None:
            self._reject(call, 404, "Unknown Feature Code")
            return
        self.presence.setdefault(plan.tenant, {})[person] = state
        self.channel.send(
            {"op": "presence_set", "tenant": plan.tenant, "person": person, "state": str(state)}
        )
        log.info("feature code %s tenant=%s: %s is %s", code, plan.tenant, person, state)
        if self.endpoint.answer(call.caller_handle):
            call.caller_answered = True
            call.finished = Finished(
                outcome=Outcome.ANSWERED,
                answered_leg=None,
                hung_up_by="switch",
                sip_status=200,
                at=time.monotonic_ns(),
            )
            self._start_timer(call, "feature-hangup", FEATURE_HANGUP_S)

    def _dictate(
        self,
        call: ActiveCall,
        plan: DialPlan,
        person: str,
        options: MediaOptions,
        invite: IncomingInvite,
    ) -> None:
        """The dictation box (issue 7): prompt, beep, then record like a voicemail."""
        call.feature = False  # a call of its own, with a call record
        call.record.tenant = plan.tenant
        call.dictation_person = person
        if self.media is None or self._draining:
            self._reject(call, 503, "Service Unavailable", retry=self._draining)
            return
        decision = Decision(
            tenant=plan.tenant,
            rule="dictation",
            steps=(),
            final=Final(FinalKind.VOICEMAIL),
            announce_as=plan.announce_as,
        )
        call.decision = decision
        call.record.rule = decision.rule
        log.info("call %s tenant=%s: %s dictates", invite.call_id, plan.tenant, person)
        call.flow = CallFlow(
            IncomingCall(
                call_id=invite.call_id,
                called=call.record.called,
                caller=call.record.caller,
                caller_display=invite.from_display,
                at=invite.at,
            ),
            decision,
            options,
        )
        self._execute(call, call.flow.start(time.monotonic_ns()))
        self._run_pending()


def _normalize(user: str) -> str:
    if not user:
        return ""
    try:
        normal = normalize_number(user)
    except Exception:  # not a phone number: keep the user part as the called "number"
        return user
    return normal if normal is not None else user


def _caller_number(user: str | None, uri: str) -> str | None:
    """E.164 when the caller's user part is a number, the URI otherwise, None if anonymous."""
    if not user or user.lower() in ("anonymous", "unknown") or "anonymous.invalid" in uri:
        return None
    normal = _normalize(user)
    return normal if normal else None


def _device_uris(from_uri: str, routes: Mapping[str, str]) -> list[str]:
    """The From URI as sent, and with its host mapped back to a route name (office)."""
    uris = [from_uri]
    parsed = parse_name_addr(from_uri)
    if parsed.user:
        bare = from_uri.split(";", 1)[0]
        uris.append(bare)
        host = bare.split("@", 1)[1] if "@" in bare else ""
        for name, address in routes.items():
            if address == host:
                uris.append(f"sip:{parsed.user}@{name}")
    return uris


# ----------------------------------------------------------------------- process main


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"address {text!r}: expected host:port")
    return host, int(port)


def _route(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"route {text!r}: expected name=host:port")
    _address(address)
    return name, address


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m switch.worker", description=__doc__)
    parser.add_argument("--sip", type=_address, required=True, help="UDP host:port to listen on")
    parser.add_argument("--dialplans", type=Path, nargs="+", required=True)
    parser.add_argument("--control-fd", type=int, default=None)
    parser.add_argument("--name", default="w1")
    parser.add_argument("--route", type=_route, action="append", default=[])
    parser.add_argument("--trunk", default=None, help="host:port for tel: targets")
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--rtp-port", type=int, default=0)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="media services: announcements and voicemail under this directory",
    )
    parser.add_argument(
        "--spare-leg",
        action="store_true",
        help="keep one pjsua call slot free so that overflow gets 503, not pjsua's own 486",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format=f"%(asctime)s {args.name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    host, port = args.sip
    config = WorkerConfig(
        name=args.name,
        host=host,
        port=port,
        dialplans=tuple(args.dialplans),
        routes=dict(args.route),
        trunk=args.trunk,
        grace=args.grace,
        spare_leg=args.spare_leg,
        data_dir=args.data_dir,
    )
    try:
        plans = load_dialplans(list(config.dialplans))
    except DialPlanError as exc:
        print(f"worker {config.name}: {exc}", file=sys.stderr)
        return 2
    channel = ControlChannel.from_fd(args.control_fd)
    endpoint = SipEndpoint(
        EndpointConfig(host=host, port=port, name=config.name, rtp_port=args.rtp_port)
    )
    try:
        endpoint.start()
    except Exception as exc:
        print(f"worker {config.name}: {exc}", file=sys.stderr)
        return 2
    media = None
    if config.data_dir is not None:
        media = MediaServices(config.data_dir, endpoint.media, channel.send)
        media.prepare(plans)  # prompts are made on a background thread, not here
    worker = Worker(config, endpoint, plans, channel, media=media)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.request_stop())
    channel.start()
    profile_path = os.environ.get("RUFWEICHE_WORKER_PROFILE")
    try:
        if profile_path:  # for benchmarks: where the SIP thread spends its time
            import cProfile

            profiler = cProfile.Profile()
            code = profiler.runcall(worker.run)
            profiler.dump_stats(profile_path)
        else:
            code = worker.run()
    finally:
        endpoint.close()
        channel.close()
    log.info("worker %s: stopped", config.name)
    return code
