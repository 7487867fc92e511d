"""What the dashboard shows, and the feed that pushes it to browsers (server-sent events).

Theory of operation
-------------------
:class:`DashboardState` is plain state: the supervisor feeds it the same call reports
it gives to the record writer and the metrics (:meth:`DashboardState.observe`), plus
presence boards and worker status. :meth:`DashboardState.snapshot` renders everything
into one JSON-ready dict; the clock comes in as an argument, so it is testable without
time passing. Latency quantiles come from the :class:`~switch.metrics.LatencyWindow`
that :class:`~switch.metrics.Metrics` fills (one window, one truth).

:class:`LiveFeed` wraps a state: every change wakes the subscribers
(:meth:`LiveFeed.stream`, one per ``EventSource``), which send a fresh snapshot,
at most every ``min_interval`` seconds (a burst of calls coalesces into one push) and
at least every ``refresh`` seconds (the windows age, and a proxy must see traffic).

The supervisor's part, per call report::

    writer.submit(phase, record, store_caller=plan.store_caller)
    metrics.observe(phase, record)
    feed.observe(phase, record)

Phone numbers are masked in everything this module renders. A snapshot is rendered
once for everybody and narrowed per subscriber to its :class:`~switch.access.policy.Scope`
(:func:`narrow`: the calls, presence boards and daily counts of its tenants).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from switch.access.policy import EVERYTHING, Scope
from switch.call.calllog import CallRecord
from switch.masking import mask_number
from switch.metrics import HOPS, LatencyWindow
from switch.records.rows import iso_utc

NS_PER_S: Final = 1e9


@dataclass(frozen=True, slots=True)
class Budgets:
    """Red-flag thresholds (DESIGN.md, "Budgets"); the alert rules use the same figures."""

    invite_p99_s: float = 0.005
    pdd_p99_s: float = 3.0
    mos_min: float = 3.6
    window_minutes: int = 5  # "now" = the last five minutes


@dataclass(slots=True)
class _ActiveCall:
    call_id: str
    tenant: str | None
    caller: str | None  # masked
    called: str
    worker: str
    started_wall: float
    state: str = "ringing"
    answered_wall: float | None = None
    answered_by: str | None = None
    by_service: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "tenant": self.tenant,
            "caller": self.caller,
            "called": self.called,
            "worker": self.worker,
            "state": self.state,
            "started": self.started_wall,
            "answered": self.answered_wall,
            "answered_by": self.answered_by,
            "by_service": self.by_service,
        }


@dataclass(slots=True)
class _Today:
    calls: int = 0
    answered_owner: int = 0
    answered_service: int = 0
    missed: int = 0

    def to_json(self, tenant: str) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "calls": self.calls,
            "answered_owner": self.answered_owner,
            "answered_service": self.answered_service,
            "missed": self.missed,
        }


@dataclass(slots=True)
class _Worker:
    up: bool
    in_use: int = 0
    capacity: int = 0


@dataclass(slots=True)
class DashboardState:
    window: LatencyWindow
    budgets: Budgets = field(default_factory=Budgets)
    tz: str = "UTC"  # the day that "calls today" counts
    active: dict[str, _ActiveCall] = field(default_factory=dict)
    today: dict[str, _Today] = field(default_factory=dict)
    today_date: date | None = None
    presence: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    workers: dict[str, _Worker] = field(default_factory=dict)
    # Issue 15: the SIP trunks' registration (switch/supervisor/trunkstate.py rows).
    trunks: list[dict[str, Any]] = field(default_factory=list)
    queues: dict[str, Any] = field(default_factory=dict)  # issue 19: QueueService.snapshot

    # Issue 16: what the ended legs' media figures were based on (MediaSource values,
    # "none" without figures), for the media card: (wall time, source), at most 1,000.
    sources: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=1000))

    def observe(self, phase: str, record: CallRecord, now: float | None = None) -> None:
        """Take one call report; ``ended`` removes the call and counts it for today."""
        if phase == "ended":
            self.active.pop(record.call_id, None)
            self._count_today(record)
            at = time.time() if now is None else now
            answered = [leg.media for leg in record.legs if leg.answered_ns is not None]
            if record.answer_relayed_ns is not None:
                answered.insert(0, record.media)
            for media in answered:
                self.sources.append((at, (media.source or "pjsua") if media else "none"))
            return
        call = self.active.get(record.call_id)
        if call is None:
            call = self.active[record.call_id] = _ActiveCall(
                call_id=record.call_id,
                tenant=record.tenant,
                caller=mask_number(record.caller),
                called=record.called,
                worker=record.worker,
                started_wall=record.started_wall,
            )
        if record.answer_relayed_ns is not None:
            call.state = "answered"
            offset = (record.answer_relayed_ns - record.invite_in_ns) / NS_PER_S
            call.answered_wall = record.started_wall + offset
            call.answered_by = record.answered_by
            call.by_service = record.answered_by_service

    def _count_today(self, record: CallRecord) -> None:
        answered = record.outcome == "answered" or record.answer_relayed_ns is not None
        self._count(record.tenant, record.started_wall, answered, record.answered_by_service)

    def _count(
        self, tenant: str | None, started_wall: float, answered: bool, by_service: bool
    ) -> None:
        day = datetime.fromtimestamp(started_wall, ZoneInfo(self.tz)).date()
        if self.today_date is None or day > self.today_date:
            self.today, self.today_date = {}, day
        elif day < self.today_date:
            return  # a call from yesterday that ended after midnight: not today's
        counts = self.today.setdefault(tenant or "-", _Today())
        counts.calls += 1
        if not answered:
            counts.missed += 1
        elif by_service:
            counts.answered_service += 1
        else:
            counts.answered_owner += 1

    def day_start(self, now: float) -> float:
        """Unix seconds of the last midnight in :attr:`tz`."""
        local = datetime.fromtimestamp(now, ZoneInfo(self.tz))
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def seed_today(self, calls: Iterable[Mapping[str, Any]], now: float) -> None:
        """Today's figures from stored calls (rows of :func:`switch.records.queries.recent_calls`),
        so that a restart does not reset them. Active rows are skipped: the workers'
        reports still to come will count them."""
        self.today, self.today_date = {}, datetime.fromtimestamp(now, ZoneInfo(self.tz)).date()
        for call in calls:
            if call.get("outcome") is None:
                continue
            answered = call.get("answer_relayed_ms") is not None
            self._count(
                call.get("tenant"),
                float(call["started_wall"]),
                answered,
                bool(call.get("answered_by_service")),
            )

    def forget_worker(self, worker: str) -> list[str]:
        """A worker died: drop its calls (their records close as aborted); return their ids."""
        gone = [cid for cid, call in self.active.items() if call.worker == worker]
        for call_id in gone:
            call = self.active.pop(call_id)
            self._count(call.tenant, call.started_wall, call.state == "answered", call.by_service)
        return gone

    def set_presence(self, tenant: str, people: Mapping[str, Any]) -> None:
        """One tenant's board: person -> state (a string/enum, or a record with
        ``.state`` and ``.since``, e.g. :class:`presence.model.PresenceRecord`)."""
        board: dict[str, dict[str, Any]] = {}
        for person, value in sorted(people.items()):
            state = getattr(value, "state", value)
            since = getattr(value, "since", None)
            board[person] = {
                "state": str(getattr(state, "value", state)),
                "since": since.timestamp() if isinstance(since, datetime) else since,
            }
        self.presence[tenant] = board

    def set_worker(self, worker: str, *, up: bool, in_use: int = 0, capacity: int = 0) -> None:
        self.workers[worker] = _Worker(up, in_use if up else 0, capacity)

    def set_trunks(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.trunks = [dict(row) for row in rows]

    # -- rendering

    def _figures(self, series: str, now: float) -> dict[str, Any]:
        """One series' figures over the budget window ("now") and the last hour."""
        return {
            "now": self.window.now(series, now, self.budgets.window_minutes).to_json(),
            "hour": self.window.hour(series, now).to_json(),
        }

    def latency(self, now: float) -> dict[str, Any]:
        return {
            series: self._figures(series, now)
            | {"series": self.window.per_minute_series(series, now)}
            for series in (*HOPS, "pdd")
        }

    def media(self, now: float) -> dict[str, Any]:
        return {
            series: self._figures(series, now) for series in ("mos", "jitter", "loss", "rtt")
        } | {"sources": self.media_sources(now)}

    def media_sources(self, now: float) -> dict[str, int]:
        """Legs ended in the window by what their figures are based on (docs/metrics.md)."""
        since = now - 60 * self.budgets.window_minutes
        counts: dict[str, int] = {}
        for at, source in self.sources:
            if at >= since:
                counts[source] = counts.get(source, 0) + 1
        return counts

    def flags(self, now: float) -> list[dict[str, Any]]:
        """Budgets exceeded now: one entry per problem, worst first, for the red banner."""
        b, minutes = self.budgets, self.budgets.window_minutes
        flags: list[dict[str, Any]] = []
        for name, up in sorted(self.workers.items()):
            if not up.up:
                flags.append({"code": "worker_down", "message": f"worker {name} is down"})
        invite = self.window.now("invite", now, minutes).p99
        if invite is not None and invite > b.invite_p99_s:
            flags.append(
                {
                    "code": "invite_delay",
                    "message": f"added INVITE delay p99 {invite * 1000:.1f} ms "
                    f"> {b.invite_p99_s * 1000:g} ms",
                }
            )
        pdd = self.window.now("pdd", now, minutes).p99
        if pdd is not None and pdd > b.pdd_p99_s:
            flags.append(
                {
                    "code": "pdd",
                    "message": f"post-dial delay p99 {pdd:.2f} s > {b.pdd_p99_s:g} s",
                }
            )
        mos = self.window.now("mos", now, minutes).p50
        if mos is not None and mos < b.mos_min:
            flags.append({"code": "mos", "message": f"median MOS {mos:.2f} < {b.mos_min:g}"})
        return flags

    def snapshot(self, now: float, scope: Scope = EVERYTHING) -> dict[str, Any]:
        """Everything the dashboard shows at ``now``, of the tenants in ``scope``."""
        return narrow(self._render(now), scope)

    def _render(self, now: float) -> dict[str, Any]:
        today = datetime.fromtimestamp(now, ZoneInfo(self.tz)).date()
        counts = self.today if self.today_date == today else {}
        return {
            "at": iso_utc(now),
            "now": now,
            "budgets": {
                "invite_p99_ms": self.budgets.invite_p99_s * 1000,
                "pdd_p99_s": self.budgets.pdd_p99_s,
                "mos_min": self.budgets.mos_min,
            },
            "active_calls": [
                c.to_json() for c in sorted(self.active.values(), key=lambda c: c.started_wall)
            ],
            "presence": self.presence,
            "latency": self.latency(now),
            "media": self.media(now),
            "today": [c.to_json(t) for t, c in sorted(counts.items())],
            "workers": [
                {"name": n, "up": w.up, "in_use": w.in_use, "capacity": w.capacity}
                for n, w in sorted(self.workers.items())
            ],
            "flags": self.flags(now),
            "trunks": self.trunks,
            "queues": self.queues.get("queues", {}),
        }


def narrow(snapshot: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """``snapshot`` with only the calls, presence boards and counts of ``scope``'s tenants
    (the figures of the whole switch — latency, media, workers, flags — stay)."""
    if scope.tenants is None:
        return snapshot
    scoped = dict(snapshot)
    scoped["active_calls"] = [c for c in snapshot["active_calls"] if scope.sees(c["tenant"])]
    scoped["presence"] = {t: b for t, b in snapshot["presence"].items() if scope.sees(t)}
    scoped["today"] = [c for c in snapshot["today"] if scope.sees(c["tenant"])]
    scoped["trunks"] = [
        t for t in snapshot.get("trunks", []) if any(scope.sees(x) for x in t.get("tenants", []))
    ]
    scoped["queues"] = {
        name: {
            **queue,
            "waiting": [w for w in queue["waiting"] if scope.sees(w["tenant"])],
            "figures": {
                **queue["figures"],
                "by_tenant": {
                    t: f for t, f in queue["figures"]["by_tenant"].items() if scope.sees(t)
                },
            },
        }
        for name, queue in snapshot.get("queues", {}).items()
    }
    return scoped


class LiveFeed:
    """Pushes :class:`DashboardState` snapshots to subscribers whenever it changes."""

    def __init__(
        self,
        state: DashboardState,
        *,
        min_interval: float = 0.2,
        refresh: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.min_interval = min_interval
        self.refresh = refresh
        self.clock = clock
        self._subscribers: set[asyncio.Event] = set()
        self._closed = False
        self._version = 0
        self._cache: tuple[int, float, dict[str, Any]] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def changed(self) -> None:
        self._version += 1
        for event in self._subscribers:
            event.set()

    def observe(self, phase: str, record: CallRecord) -> None:
        self.state.observe(phase, record)
        self.changed()

    def set_presence(self, tenant: str, people: Mapping[str, Any]) -> None:
        self.state.set_presence(tenant, people)
        self.changed()

    def set_worker(self, worker: str, *, up: bool, in_use: int = 0, capacity: int = 0) -> None:
        self.state.set_worker(worker, up=up, in_use=in_use, capacity=capacity)
        self.changed()

    def set_trunks(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.state.set_trunks(rows)
        self.changed()

    def forget_worker(self, worker: str) -> list[str]:
        gone = self.state.forget_worker(worker)
        self.changed()
        return gone

    def set_queues(self, snapshot: dict[str, Any]) -> None:
        """The queues as :meth:`switch.supervisor.queues.QueueService.snapshot` gives them."""
        if snapshot != self.state.queues:
            self.state.queues = snapshot
            self.changed()

    def snapshot(self, scope: Scope = EVERYTHING) -> dict[str, Any]:
        """The current snapshot in ``scope``; subscribers woken by the same change share
        one rendering (it sorts an hour of samples: ~10 ms with 40,000 of them)."""
        now = self.clock()
        if self._cache is not None:
            version, at, cached = self._cache
            if version == self._version and 0 <= now - at < self.min_interval:
                return narrow(cached, scope)
        snapshot = self.state.snapshot(now)
        self._cache = (self._version, now, snapshot)
        return narrow(snapshot, scope)

    async def load_today(
        self, recent_calls: Callable[..., Awaitable[list[dict[str, Any]]]], limit: int = 100_000
    ) -> None:
        """Seed "calls per business today" from the records, e.g.
        ``await feed.load_today(writer.recent_calls)`` at start."""
        now = self.clock()
        since = self.state.day_start(now)
        calls = await recent_calls(since=since, limit=limit, with_legs=False)
        self.state.seed_today(calls, now)
        self.changed()

    def close(self) -> None:
        """End every stream (at shutdown, so that open EventSources do not hold it up)."""
        self._closed = True
        self.changed()

    async def stream(
        self, scope: Callable[[], Scope] = lambda: EVERYTHING
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Snapshots for one subscriber: one now, then one after each change (coalesced),
        each narrowed to ``scope()`` as it is at that push (it may raise to end the stream)."""
        event = asyncio.Event()
        self._subscribers.add(event)
        try:
            while not self._closed:
                event.clear()
                yield self.snapshot(scope())
                # Rate limit after a push, not before: a lone change goes out at once,
                # changes during the pause coalesce into the next push.
                await asyncio.sleep(self.min_interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self.refresh)
        finally:
            self._subscribers.discard(event)
