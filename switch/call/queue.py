"""One call queue of the secretarial service, as a pure model driven by time as an argument.

Theory of operation
-------------------
A queue spans workers: a waiting caller is held by one worker (its caller leg and one
reserved leg), while who waits in which order, which member is free and every wrap-up
timer live here, in the supervisor (switch/supervisor/queues.py drives this model and
sends the workers what it decides). Nothing here reads a clock, sleeps or does I/O:
``now`` (seconds, any monotonic origin) comes in with every call.

The life of a waiting caller (a :class:`Waiter`)::

    join() ──▶ waiting ──offers()──▶ offered to member(s) ──answered()──▶ gone (handled)
                 ▲                         │
                 └───── offer_failed() ────┘   leave(): gone (abandoned / overflow)
                                              expired(): max wait reached (overflow)

The life of a member (:class:`MemberStatus`): LOGGED_OUT ⇄ AVAILABLE ⇄ PAUSED;
AVAILABLE ─offer─▶ RINGING ─answer─▶ ON_CALL ─call_ended─▶ WRAP_UP ─wrap-up over─▶
AVAILABLE; a RINGING member that does not answer is AVAILABLE again at once (and is not
offered the same caller again until everyone else eligible has been tried). A member
who is busy on another call (``busy_elsewhere``, from presence) is skipped.

Order and choice (:meth:`Queue.offers`): waiters in the order they joined; for each, the
eligible members (available, may answer the waiter's business: ``skills`` empty or
naming the tenant) ranked by penalty first, then by the strategy:

* ``ring_all``      every eligible member at once (first answer wins);
* ``longest_idle``  the member idle the longest (since login or the end of the wrap-up);
* ``round_robin``   the member after the one offered last, in configuration order;
* ``fewest_calls``  the member with the fewest answered calls, then longest idle;
* ``by_skill``      the member with the best (lowest) priority for the business, then
  longest idle.

A waiter that no eligible member can take does not block those behind it: a later caller
for another business may get a member the first one may not have.

Callbacks (:meth:`Queue.to_callback`): a caller who pressed the callback digit keeps its
place as a *callback* waiter (``Waiter.callback``: the number to call); it holds no leg, so
it counts neither for ``max_length`` nor for the maximum wait. Its turn is an offer to one
member (never ring-all); the worker rings her, then the caller (switch/worker/queueing.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

MEMBER_CODES: Final[Mapping[str, str]] = {
    "*45": "login",
    "*46": "logout",
    "*47": "pause",
    "*48": "unpause",
}
"""Feature codes of queue members (docs/queues.md); the caller's SIP user names the member."""

DEFAULT_HANDLE_S: Final = 120.0
"""The average handle time assumed for the expected wait until calls were measured."""


class Strategy(StrEnum):
    RING_ALL = "ring_all"
    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    FEWEST_CALLS = "fewest_calls"
    BY_SKILL = "by_skill"


class MemberStatus(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    PAUSED = "paused"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BUSY = "busy"  # on a call that is not from this queue (presence)


class Refusal(StrEnum):
    """Why :meth:`Queue.join` did not take a caller."""

    FULL = "full"  # max_length callers wait already
    NO_MEMBER = "no_member"  # nobody logged in may answer this business


@dataclass(frozen=True, slots=True)
class MemberConfig:
    name: str
    uri: str  # where to ring the member: "sip:anna@office"
    # tenant -> priority (1 best); empty: the member answers every business
    skills: Mapping[str, int] = field(default_factory=dict)
    penalty: int = 0  # members with a lower penalty are offered calls first
    user: str | None = None  # the SIP user of the member's phone (feature codes)
    logged_in: bool = True  # at start


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    members: tuple[MemberConfig, ...]
    strategy: Strategy = Strategy.LONGEST_IDLE
    max_wait_s: float = 300.0
    max_length: int = 10
    wrapup_s: float = 10.0
    ring_timeout_s: float = 15.0
    service_level_s: float = 20.0
    announce_every_s: float = 30.0
    callback_digit: str | None = "5"  # pressed while waiting: leave a callback request


@dataclass(slots=True)
class Member:
    config: MemberConfig
    logged_in: bool
    paused: bool = False
    busy_elsewhere: bool = False
    ringing: set[str] = field(default_factory=set)  # call ids offered to this member now
    on_call: str | None = None
    on_call_worker: str | None = None
    wrapup_until: float | None = None
    idle_since: float = 0.0
    calls: int = 0
    talk_s: float = 0.0
    answered_at: float | None = None

    def status(self, now: float) -> MemberStatus:
        if not self.logged_in:
            return MemberStatus.LOGGED_OUT
        if self.on_call is not None:
            return MemberStatus.ON_CALL
        if self.ringing:
            return MemberStatus.RINGING
        if self.wrapup_until is not None and now < self.wrapup_until:
            return MemberStatus.WRAP_UP
        if self.busy_elsewhere:
            return MemberStatus.BUSY
        if self.paused:
            return MemberStatus.PAUSED
        return MemberStatus.AVAILABLE

    def answers(self, tenant: str) -> bool:
        return not self.config.skills or tenant in self.config.skills

    def priority(self, tenant: str) -> int:
        return self.config.skills.get(tenant, 0)


@dataclass(slots=True)
class Waiter:
    call_id: str
    tenant: str
    worker: str
    joined_at: float
    offered: set[str] = field(default_factory=set)  # members ringing for this caller now
    tried: set[str] = field(default_factory=set)  # members who did not answer it
    callback: str | None = None  # the number to call back: a callback request's turn


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``member`` for the caller ``call_id`` held by ``worker``."""

    call_id: str
    worker: str
    member: str
    uri: str
    timeout_s: float
    callback: str | None = None  # a callback request (the caller's number); ``call_id`` its ref
    tenant: str = ""


@dataclass(frozen=True, slots=True)
class Handled:
    """A waiter left the queue: how long it waited, whether a member took it, and who."""

    call_id: str
    tenant: str
    waited_s: float
    member: str | None  # None: abandoned, overflowed or aborted


class Queue:
    """One queue's waiters and members (see the module docstring)."""

    def __init__(self, config: QueueConfig, now: float) -> None:
        self.config = config
        self.members: dict[str, Member] = {
            m.name: Member(m, logged_in=m.logged_in, idle_since=now) for m in config.members
        }
        self.waiting: list[Waiter] = []
        self._last_rr: int = -1
        self._handle_total = 0.0
        self._handle_count = 0

    # ------------------------------------------------------------------ configuration

    def reconfigure(self, config: QueueConfig, now: float) -> None:
        """New settings (a reload): waiters keep their place, known members their state."""
        old = self.members
        self.config = config
        self.members = {}
        for m in config.members:
            member = old.get(m.name)
            if member is None:
                member = Member(m, logged_in=m.logged_in, idle_since=now)
            else:
                member.config = m
            self.members[m.name] = member

    # ------------------------------------------------------------------ callers

    def join(self, call_id: str, tenant: str, worker: str, now: float) -> Refusal | int:
        """Queue a caller; its position (1 = next), or why it was not taken."""
        existing = self.position(call_id)
        if existing:
            return existing
        if sum(1 for w in self.waiting if w.callback is None) >= self.config.max_length:
            return Refusal.FULL
        if not any(m.logged_in and m.answers(tenant) for m in self.members.values()):
            return Refusal.NO_MEMBER
        self.waiting.append(Waiter(call_id, tenant, worker, now))
        return len(self.waiting)

    def position(self, call_id: str) -> int:
        """1-based place in the queue; 0 when the caller does not wait here."""
        for index, waiter in enumerate(self.waiting):
            if waiter.call_id == call_id:
                return index + 1
        return 0

    def leave(self, call_id: str, now: float) -> Handled | None:
        """The caller left before a member took it (hung up, overflow, callback, crash)."""
        waiter = self._pop(call_id)
        if waiter is None:
            return None
        for name in waiter.offered:
            member = self.members.get(name)
            if member is not None:
                member.ringing.discard(call_id)
        return Handled(call_id, waiter.tenant, now - waiter.joined_at, None)

    def to_callback(self, call_id: str, ref: str, number: str) -> bool:
        """The waiting caller ``call_id`` asked for a callback: it keeps its place as the
        callback request ``ref`` (calling ``number``); False when it does not wait here."""
        for waiter in self.waiting:
            if waiter.call_id == call_id:
                for name in waiter.offered:
                    member = self.members.get(name)
                    if member is not None:
                        member.ringing.discard(call_id)
                waiter.offered.clear()
                waiter.call_id, waiter.callback = ref, number
                return True
        return False

    def leave_worker(self, worker: str, now: float) -> list[Handled]:
        """A worker died: every caller it held is gone (callback requests hold no leg)."""
        gone = [w.call_id for w in self.waiting if w.worker == worker and w.callback is None]
        handled = [self.leave(call_id, now) for call_id in gone]
        for member in self.members.values():
            if member.on_call is not None and member.on_call_worker == worker:
                self.call_ended(member.config.name, now)
        return [h for h in handled if h is not None]

    def expired(self, now: float) -> list[Waiter]:
        """Waiters past the maximum wait and not ringing anyone: they must overflow now."""
        limit = self.config.max_wait_s
        return [
            w
            for w in self.waiting
            if now - w.joined_at >= limit and not w.offered and w.callback is None
        ]

    def expected_wait_s(self, position: int) -> float:
        """A rough estimate: the callers ahead share the members' average handle time."""
        staffed = sum(1 for m in self.members.values() if m.logged_in and not m.paused)
        handle = self._handle_total / self._handle_count if self._handle_count else DEFAULT_HANDLE_S
        return position * handle / max(1, staffed)

    # ------------------------------------------------------------------ offers

    def offers(self, now: float) -> list[Offer]:
        """Whom to ring now, for which callers (each member gets at most one caller)."""
        result: list[Offer] = []
        for waiter in self.waiting:
            if waiter.offered:
                continue  # ringing someone already; wait for the answer
            eligible = self._eligible(waiter, now)
            if not eligible:
                continue
            ring_all = self.config.strategy is Strategy.RING_ALL and waiter.callback is None
            chosen = eligible if ring_all else eligible[:1]
            for member in chosen:
                name = member.config.name
                member.ringing.add(waiter.call_id)
                waiter.offered.add(name)
                timeout = self.config.ring_timeout_s
                uri = member.config.uri
                result.append(
                    Offer(
                        waiter.call_id,
                        waiter.worker,
                        name,
                        uri,
                        timeout,
                        callback=waiter.callback,
                        tenant=waiter.tenant,
                    )
                )
                if self.config.strategy is Strategy.ROUND_ROBIN:
                    self._last_rr = self._index(name)
        return result

    def _eligible(self, waiter: Waiter, now: float) -> list[Member]:
        free = [
            m
            for m in self.members.values()
            if m.status(now) is MemberStatus.AVAILABLE and m.answers(waiter.tenant)
        ]
        fresh = [m for m in free if m.config.name not in waiter.tried]
        if not fresh and free:
            waiter.tried.clear()  # everyone was tried once: start over
            fresh = free
        return sorted(fresh, key=lambda m: self._rank(m, waiter.tenant, now))

    def _rank(self, member: Member, tenant: str, now: float) -> tuple[float, ...]:
        idle = self._idle_from(member, now)
        strategy = self.config.strategy
        if strategy is Strategy.ROUND_ROBIN:
            count = max(1, len(self.members))
            after_last = (self._index(member.config.name) - self._last_rr - 1) % count
            return (member.config.penalty, after_last)
        if strategy is Strategy.FEWEST_CALLS:
            return (member.config.penalty, member.calls, idle)
        if strategy is Strategy.BY_SKILL:
            return (member.config.penalty, member.priority(tenant), idle)
        return (member.config.penalty, idle, self._index(member.config.name))

    @staticmethod
    def _idle_from(member: Member, now: float) -> float:
        since = member.idle_since
        if member.wrapup_until is not None:
            since = max(since, member.wrapup_until)
        return since

    def _index(self, name: str) -> int:
        return list(self.members).index(name)

    def offer_failed(self, call_id: str, member: str, now: float) -> None:
        """The member did not answer (busy, no answer, error): offer the caller again."""
        person = self.members.get(member)
        if person is not None:
            person.ringing.discard(call_id)
        for waiter in self.waiting:
            if waiter.call_id == call_id:
                waiter.offered.discard(member)
                waiter.tried.add(member)

    def answered(self, call_id: str, member: str, now: float) -> Handled | None:
        """The member took the caller: it leaves the queue, the member is on the call."""
        waiter = self._pop(call_id)
        person = self.members.get(member)
        if waiter is None or person is None:
            return None
        for name in waiter.offered:
            other = self.members.get(name)
            if other is not None:
                other.ringing.discard(call_id)
        person.on_call = call_id
        person.on_call_worker = waiter.worker
        person.answered_at = now
        person.calls += 1
        return Handled(call_id, waiter.tenant, now - waiter.joined_at, member)

    def call_ended(self, member: str, now: float) -> float:
        """The member's queue call is over: wrap-up begins. Returns the talk time."""
        person = self.members.get(member)
        if person is None or person.on_call is None:
            return 0.0
        talk = now - (person.answered_at or now)
        person.on_call = None
        person.on_call_worker = None
        person.answered_at = None
        person.talk_s += talk
        person.wrapup_until = now + self.config.wrapup_s
        person.idle_since = person.wrapup_until
        self._handle_total += talk
        self._handle_count += 1
        return talk

    # ------------------------------------------------------------------ members

    def set_member(self, member: str, state: str, now: float) -> MemberStatus:
        """``login``, ``logout``, ``pause`` or ``unpause`` (feature code, MQTT, HTTP)."""
        person = self.members[member]
        if state == "login":
            if not person.logged_in:
                person.idle_since = now
            person.logged_in, person.paused = True, False
        elif state == "logout":
            person.logged_in, person.paused = False, False
        elif state == "pause":
            person.paused = True
        elif state == "unpause":
            person.paused = False
        else:
            raise ValueError(f"member state {state!r} is not login, logout, pause or unpause")
        return person.status(now)

    def member_by_user(self, user: str) -> str | None:
        for name, member in self.members.items():
            if user in (member.config.user, name):
                return name
        return None

    # ------------------------------------------------------------------ views

    def next_change(self, now: float) -> float | None:
        """When the model should be asked again without any event: a wrap-up's end, a
        waiter's maximum wait."""
        times = [
            m.wrapup_until
            for m in self.members.values()
            if m.wrapup_until is not None and m.wrapup_until > now
        ]
        times.extend(w.joined_at + self.config.max_wait_s for w in self.waiting)
        return min(times) if times else None

    def snapshot(self, now: float) -> dict[str, object]:
        """The queue as the API and the dashboard show it (JSON-ready)."""
        return {
            "name": self.config.name,
            "strategy": str(self.config.strategy),
            "waiting": [
                {
                    "call_id": w.call_id,
                    "tenant": w.tenant,
                    "worker": w.worker,
                    "waited_s": round(now - w.joined_at, 1),
                    "ringing": sorted(w.offered),
                    "callback": w.callback is not None,
                }
                for w in self.waiting
            ],
            "longest_wait_s": round(max((now - w.joined_at for w in self.waiting), default=0.0), 1),
            "members": {
                name: {
                    "status": str(m.status(now)),
                    "calls": m.calls,
                    "talk_s": round(m.talk_s, 1),
                    "skills": dict(m.config.skills),
                    "penalty": m.config.penalty,
                }
                for name, m in self.members.items()
            },
        }

    def _pop(self, call_id: str) -> Waiter | None:
        for index, waiter in enumerate(self.waiting):
            if waiter.call_id == call_id:
                return self.waiting.pop(index)
        return None


__all__ = [
    "DEFAULT_HANDLE_S",
    "MEMBER_CODES",
    "Handled",
    "Member",
    "MemberConfig",
    "MemberStatus",
    "Offer",
    "Queue",
    "QueueConfig",
    "Refusal",
    "Strategy",
    "Waiter",
]
