"""The queues of the secretarial service in the supervisor (issue 19): settings and service.

Theory of operation
-------------------
A queue is defined once, in the settings (``queues:``, :class:`QueueSpec`), and used by
many businesses' dial plans (``{queue: heimbuero}``). Its state spans workers, so it lives
here: one pure :class:`~switch.call.queue.Queue` per name, driven by
:class:`QueueService` with the monotonic clock.

The worker holding a waiting caller says ``queue_join``; the service answers with the
caller's place (``queue_update``), later with ``queue_offer`` (ring this member) or
``queue_give_up`` (maximum wait, full, nobody logged in, unknown queue). The worker
reports each offer's result (``queue_result``) and a callback request
(``queue_callback``); the end of every call comes as its ``ended`` call report, which
frees a member (wrap-up begins) or counts an abandoned caller. After every change, and
once a second (wrap-ups end, waits expire), :meth:`QueueService.dispatch` hands out
offers and sends every caller whose place changed its new place.

A dial-plan reload does not touch the queues (they are in the settings); a settings
change goes through :meth:`QueueService.reconfigure`, which keeps every waiter in place.
A worker that dies takes its waiting callers with it (:meth:`QueueService.worker_lost`):
they count as ``aborted``; their call records are closed as aborted by the supervisor.

Callback requests (``queue_callback``) keep the caller's place (:meth:`Queue.to_callback`)
under a ref ``cb-<n>``; when a member is free the service sends ``queue_call_back`` to the
worker that took the request (any live worker when that one is gone,
:meth:`Supervisor.send_to_worker`): it rings the member, then the caller through the
tenant's trunk with the business's number. ``queue_result`` for the ref says whether she
answered; ``queue_callback_done`` ends her call (wrap-up) and says whether the caller was
reached. :attr:`QueueService.callbacks` lists every request with its state for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from rules import DialPlanSet
from rules.model import Seconds
from switch.call.queue import (
    MemberConfig,
    Queue,
    QueueConfig,
    Refusal,
    Strategy,
)
from switch.control import messages as control
from switch.supervisor.queuemetrics import QueueMetrics

log = logging.getLogger("rufweiche.queues")


class MemberSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: Annotated[str, Field(pattern=r"^(sips?|tel):\S+$")]
    user: str | None = None  # the SIP user of the member's phone (feature codes *45..*48)
    # business (tenant) -> priority, 1 best; empty: the member answers every business
    skills: dict[str, Annotated[int, Field(ge=1, le=99)]] = Field(default_factory=dict)
    penalty: Annotated[int, Field(ge=0, le=99)] = 0
    logged_in: bool = True


class QueueSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    members: dict[str, MemberSpec] = Field(min_length=1)
    strategy: Strategy = Strategy.LONGEST_IDLE
    max_wait: Seconds = 300.0
    max_length: Annotated[int, Field(ge=1, le=500)] = 10
    wrapup: Annotated[float, Field(ge=0, le=3600)] = 10.0
    ring_timeout: Seconds = 15.0
    service_level: Seconds = 20.0
    callback_digit: Annotated[str, Field(pattern=r"^[0-9*#]$")] | None = "5"

    def config(self, name: str) -> QueueConfig:
        members = tuple(
            MemberConfig(
                member,
                spec.uri,
                dict(spec.skills),
                spec.penalty,
                spec.user,
                spec.logged_in,
            )
            for member, spec in self.members.items()
        )
        return QueueConfig(
            name,
            members,
            self.strategy,
            max_wait_s=self.max_wait,
            max_length=self.max_length,
            wrapup_s=self.wrapup,
            ring_timeout_s=self.ring_timeout,
            service_level_s=self.service_level,
            callback_digit=self.callback_digit,
        )


def plan_queues(plans: DialPlanSet) -> dict[str, set[str]]:
    """Which queues each tenant's rules name (to check them against the settings)."""
    used: dict[str, set[str]] = {}
    for plan in plans:
        rules = list(plan.rules)
        for extension in plan.extensions.values():
            rules.extend(extension.rules)
        for rule in rules:
            for step in rule.steps:
                name = getattr(step.static, "queue", None)
                if name:
                    used.setdefault(plan.tenant, set()).add(name)
    return used


Send = Callable[[str, control.ToWorker], Awaitable[None]]


class QueueService:
    """Every queue's state and the messages that drive it (see the module docstring)."""

    def __init__(
        self,
        specs: Mapping[str, QueueSpec],
        send: Send,
        metrics: QueueMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.metrics = metrics
        self.clock = clock
        now = clock()
        self.queues: dict[str, Queue] = {n: Queue(s.config(n), now) for n, s in specs.items()}
        self._waiting: dict[str, str] = {}  # call id -> queue, while the caller waits
        self._talking: dict[str, tuple[str, str]] = {}  # call id -> (queue, member)
        self._tenants: dict[str, str] = {}  # call id -> tenant
        self._told: dict[str, int] = {}  # call id -> the position it was told last
        self._elsewhere: dict[str, str] = {}  # call id -> a member's URI on a non-queue call
        self.callbacks: list[dict[str, Any]] = []
        self._callback_refs: dict[str, dict[str, Any]] = {}  # ref -> its entry in callbacks
        self.changed: Callable[[], None] = lambda: None  # presence / dashboard hook
        # MQTT: (topic, payload) of a member's queue status, retained (app.start_queues)
        self.publish: Callable[[str, bytes], Awaitable[None]] | None = None
        self.topic_prefix = "rufweiche"
        self._published: dict[tuple[str, str], str] = {}
        self._publishing: set[asyncio.Task[None]] = set()

    def check_plans(self, plans: DialPlanSet) -> list[str]:
        """Log (and return) every queue a plan names that is not defined here."""
        problems = [
            f"tenant {tenant} names queue {name!r}, which the settings do not define"
            for tenant, names in sorted(plan_queues(plans).items())
            for name in sorted(names - set(self.queues))
        ]
        for problem in problems:
            log.error("%s", problem)
        return problems

    # ------------------------------------------------------------------ worker messages

    async def on_message(self, worker: str, message: control.FromWorker) -> None:
        match message:
            case control.QueueJoin(queue, call_id, tenant):
                await self._join(worker, queue, call_id, tenant)
            case control.QueueResult(queue, call_id, member, answered):
                q = self.queues.get(queue)
                if q is None:
                    return
                now = self.clock()
                entry = self._callback_refs.get(call_id)
                if entry is not None:  # a callback's member: she answered, or not
                    if answered and q.answered(call_id, member, now) is not None:
                        entry.update(state="member_answered", member=member)
                        self.metrics.answered_by(queue, member)  # her call, like any other
                    elif not answered:
                        q.offer_failed(call_id, member, now)
                        entry.update(state="waiting")
                elif answered:
                    handled = q.answered(call_id, member, now)
                    self._waiting.pop(call_id, None)
                    self._talking[call_id] = (queue, member)
                    if handled is not None:
                        self.metrics.left(queue, handled.tenant, "answered", handled.waited_s)
                        self.metrics.answered_by(queue, member)
                else:
                    q.offer_failed(call_id, member, now)
                await self.dispatch()
            case control.QueueCallback(queue, call_id, tenant, number):
                await self._callback_requested(queue, call_id, tenant, number)
            case control.QueueCallbackDone(queue, ref, member, reached):
                q = self.queues.get(queue)
                if q is not None:
                    talk = q.call_ended(member, self.clock())
                    self.metrics.call_ended(queue, member, talk)
                entry = self._callback_refs.get(ref)
                if entry is not None:
                    entry.update(state="reached" if reached else "not_reached")
                log.info("queue %s: callback %s by %s, caller reached: %s", queue, ref, member,
                         reached)  # fmt: skip
                await self.dispatch()
            case control.QueueMember(user, action):
                await self.member_action(user, action)
            case _:
                pass

    async def _callback_requested(self, queue: str, call_id: str, tenant: str, number: str) -> None:
        """The caller keeps its place as a callback request (placed when a member is free)."""
        self._waiting.pop(call_id, None)
        self._told.pop(call_id, None)
        q = self.queues.get(queue)
        ref = f"cb-{len(self.callbacks) + 1}"
        kept = q is not None and q.to_callback(call_id, ref, number)
        entry: dict[str, Any] = {
            "ref": ref,
            "queue": queue,
            "tenant": tenant,
            "call_id": call_id,
            "number": number,
            "requested_wall": time.time(),
            "state": "waiting" if kept else "lost",  # then ringing, member_answered, reached
            "member": None,
        }
        self.callbacks.append(entry)
        self._callback_refs[ref] = entry
        self.metrics.left(queue, tenant, "callback", None)
        log.info("queue %s tenant=%s: callback %s requested", queue, tenant, ref)
        await self.dispatch()

    async def _join(self, worker: str, queue: str, call_id: str, tenant: str) -> None:
        q = self.queues.get(queue)
        if q is None:
            log.error("tenant %s: queue %r is not in the settings", tenant, queue)
            await self.send(worker, control.QueueGiveUp(call_id, "unknown"))
            return
        result = q.join(call_id, tenant, worker, self.clock())
        if isinstance(result, Refusal):
            self.metrics.left(queue, tenant, "refused", None)
            await self.send(worker, control.QueueGiveUp(call_id, str(result)))
            return
        self._waiting[call_id] = queue
        self._tenants[call_id] = tenant
        await self.dispatch()

    def call_answered(self, call_id: str, uri: str) -> None:
        """A call (not from a queue) was answered at ``uri``: a member there is busy."""
        if call_id in self._talking:
            return
        self._elsewhere[call_id] = uri
        self._mark_elsewhere()

    def _mark_elsewhere(self) -> None:
        busy = set(self._elsewhere.values())
        for q in self.queues.values():
            for member in q.members.values():
                member.busy_elsewhere = member.config.uri in busy

    def call_ended(self, call_id: str, outcome: str | None = None) -> None:
        """A call report said ``ended``: a member's call is over, or a waiter hung up
        (``abandoned``; ``aborted`` when the worker ended it, e.g. stopping)."""
        if self._elsewhere.pop(call_id, None) is not None:
            self._mark_elsewhere()
        talking = self._talking.pop(call_id, None)
        self._tenants.pop(call_id, None)
        if talking is not None:
            queue, member = talking
            q = self.queues.get(queue)
            if q is not None:
                talk = q.call_ended(member, self.clock())
                self.metrics.call_ended(queue, member, talk)
        elif call_id in self._waiting:
            self._leave(call_id, "aborted" if outcome == "aborted" else "abandoned")

    def worker_lost(self, worker: str) -> int:
        """A worker died: its waiting callers are gone (aborted), its members' calls over."""
        now = self.clock()
        lost = 0
        for name, q in self.queues.items():
            for handled in q.leave_worker(worker, now):
                self._waiting.pop(handled.call_id, None)
                self._told.pop(handled.call_id, None)
                self.metrics.left(name, handled.tenant, "aborted", handled.waited_s)
                lost += 1
        for call_id, (queue, _member) in list(self._talking.items()):
            talking = self.queues.get(queue)
            if talking is not None and all(m.on_call != call_id for m in talking.members.values()):
                del self._talking[call_id]
        return lost

    def _leave(self, call_id: str, result: str) -> None:
        queue = self._waiting.pop(call_id, None)
        self._told.pop(call_id, None)
        q = self.queues.get(queue) if queue else None
        if q is None or queue is None:
            return
        handled = q.leave(call_id, self.clock())
        if handled is not None:
            self.metrics.left(queue, handled.tenant, result, handled.waited_s)

    # ------------------------------------------------------------------ members

    async def member_action(self, user: str, action: str) -> list[str]:
        """A member's feature code (or MQTT/HTTP): every queue the member belongs to."""
        now = self.clock()
        changed = []
        for name, q in self.queues.items():
            member = q.member_by_user(user)
            if member is not None:
                q.set_member(member, action, now)
                changed.append(name)
        if not changed:
            log.warning("queue member action %s from %r: not a member of any queue", action, user)
        log.info("queue member %s: %s in %s", user, action, ", ".join(changed) or "none")
        await self.dispatch()
        return changed

    async def mqtt_command(self, topic: str, payload: bytes) -> None:
        """``<prefix>/queue/<queue>/member/<member>/set`` with ``login``, ``logout``,
        ``pause`` or ``unpause`` (or ``{"action": ...}``); anything else is logged."""
        parts = topic.split("/")
        text = payload.decode(errors="replace").strip()
        try:
            action = str(json.loads(text)["action"]) if text.startswith("{") else text
            queue, member = parts[-4], parts[-2]
            if queue not in self.queues or member not in self.queues[queue].members:
                raise KeyError(f"{member!r} in {queue!r}")
            status = await self.set_member(queue, member, action)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("MQTT queue command on %r ignored: %s", topic, exc)
            return
        log.info("queue %s member %s: %s over MQTT", queue, member, status)

    async def set_member(self, queue: str, member: str, action: str) -> str:
        q = self.queues[queue]
        status = q.set_member(member, action, self.clock())
        await self.dispatch()
        return str(status)

    # ------------------------------------------------------------------ dispatching

    async def dispatch(self) -> None:
        """Offers, overflows and position updates for every queue, now."""
        now = self.clock()
        for name, q in self.queues.items():
            for waiter in q.expired(now):
                self._leave(waiter.call_id, "overflow")
                await self.send(waiter.worker, control.QueueGiveUp(waiter.call_id, "max_wait"))
            for offer in q.offers(now):
                if offer.callback is not None:  # a callback request's turn
                    self._callback_refs[offer.call_id].update(state="ringing", member=offer.member)
                    call_back = control.QueueCallBack(
                        name,
                        offer.call_id,
                        offer.tenant,
                        offer.callback,
                        offer.member,
                        offer.uri,
                        offer.timeout_s,
                    )
                    await self.send(offer.worker, call_back)
                    continue
                ref = f"{name}.{offer.member}"
                message = control.QueueOffer(
                    offer.call_id, offer.member, offer.uri, ref, offer.timeout_s
                )
                await self.send(offer.worker, message)
            for position, waiter in enumerate(q.waiting, start=1):
                if waiter.callback is not None or self._told.get(waiter.call_id) == position:
                    continue
                self._told[waiter.call_id] = position
                wait = q.expected_wait_s(position)
                update = control.QueueUpdate(
                    waiter.call_id, position, wait, q.config.callback_digit
                )
                await self.send(waiter.worker, update)
            statuses: dict[str, int] = {}
            for member in q.members.values():
                status = str(member.status(now))
                statuses[status] = statuses.get(status, 0) + 1
            longest = max((now - w.joined_at for w in q.waiting), default=0.0)
            self.metrics.set_queue(name, len(q.waiting), longest, statuses)
            self._publish_members(name, q, now)
        self.changed()

    def _publish_members(self, name: str, q: Queue, now: float) -> None:
        """Each member's queue status as a retained MQTT message, when it changed:
        ``<prefix>/queue/<queue>/member/<member>`` with ``{"queue", "member", "status",
        "calls"}``. In the background: a broker that is away never holds the queue up."""
        if self.publish is None:
            return
        for member, state in q.members.items():
            status = str(state.status(now))
            if self._published.get((name, member)) == status:
                continue
            self._published[(name, member)] = status
            topic = f"{self.topic_prefix}/queue/{name}/member/{member}"
            payload = json.dumps(
                {"queue": name, "member": member, "status": status, "calls": state.calls}
            ).encode()
            task = asyncio.get_running_loop().create_task(self._send_mqtt(topic, payload))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _send_mqtt(self, topic: str, payload: bytes) -> None:
        assert self.publish is not None
        try:
            async with asyncio.timeout(10):
                await self.publish(topic, payload)
        except Exception as exc:  # the broker is away: the next change publishes again
            log.warning("queue member status not published on %s: %s", topic, exc)

    async def run(self, stopping: asyncio.Event, tick_s: float = 1.0) -> None:
        """Once a second: wrap-ups end, waits expire (everything else is event driven)."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), tick_s)
            try:
                await self.dispatch()
            except Exception:
                log.exception("queue dispatch failed")

    def reconfigure(self, specs: Mapping[str, QueueSpec]) -> None:
        """New settings: waiters keep their place, members their state."""
        now = self.clock()
        for name, spec in specs.items():
            if name in self.queues:
                self.queues[name].reconfigure(spec.config(name), now)
            else:
                self.queues[name] = Queue(spec.config(name), now)

    # ------------------------------------------------------------------ views

    def snapshot(self) -> dict[str, Any]:
        """Every queue for the API and the dashboard (and the console, issue 18)."""
        now = self.clock()
        return {
            "queues": {
                name: {**q.snapshot(now), "figures": self.metrics.figures(name)}
                for name, q in self.queues.items()
            },
            "callbacks": list(self.callbacks),
        }

    def member_states(self) -> dict[str, dict[str, str]]:
        """member -> {queue: status}: the queue part of each member's presence."""
        now = self.clock()
        states: dict[str, dict[str, str]] = {}
        for name, q in self.queues.items():
            for member, state in q.members.items():
                states.setdefault(member, {})[name] = str(state.status(now))
        return states


__all__ = ["MemberSpec", "QueueService", "QueueSpec", "plan_queues"]
