"""Prometheus metrics and an exact rolling latency window for the dashboard.

Theory of operation
-------------------
:class:`Metrics` owns a dedicated :class:`~prometheus_client.CollectorRegistry`
(never the global one: tests and several switches in one process must not share
counters). The supervisor calls :meth:`Metrics.observe` with every call report from
a worker (``started``/``answered``/``ended``, :mod:`switch.call.calllog`). Each latency
figure is observed once per call, as soon as its two stamps are known, so the
dashboard sees the INVITE delay while the call still rings.

Figures (all differences of ``time.monotonic_ns()`` stamps of the worker):

- post-dial delay, RFC 6076 §4.3 "Session Request Delay": INVITE in -> first 18x
  relayed to the caller;
- the delay the switch adds per hop: ``invite`` (INVITE in -> first INVITE out),
  ``ringing`` (first 18x in -> 18x relayed), ``answer`` (200 in -> 200 relayed);
- answer delay: INVITE in -> 200 relayed;
- media per leg at the end of the call: jitter, loss, RTT, MOS (E-model estimate).

Labels never carry phone numbers or Call-IDs (unbounded cardinality, and personal
data in a time-series database): only tenant, outcome, hop, leg kind, worker, state.

Prometheus histograms cannot give exact quantiles, and the dashboard wants p50/p95/p99
"now" and over the last hour, so :class:`LatencyWindow` keeps the raw samples of the
last hour in per-minute buckets (pure: the clock comes in as an argument).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from switch.call.calllog import CallRecord, MediaStats

NS_PER_S: Final = 1e9

# Sub-millisecond resolution where the switch's own work shows (the budget is 5 ms p99).
ADDED_DELAY_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05,
)  # fmt: skip
PDD_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
ANSWER_BUCKETS: Final = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
JITTER_BUCKETS: Final = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
RTT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0)
LOSS_BUCKETS: Final = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
MOS_BUCKETS: Final = (1.0, 2.0, 2.5, 3.0, 3.3, 3.6, 3.8, 4.0, 4.2, 4.4, 4.5)

HOPS: Final = ("invite", "ringing", "answer")
SERIES: Final = ("invite", "ringing", "answer", "pdd", "mos", "jitter", "rtt", "loss")
"""The series :class:`LatencyWindow` keeps: the hops, PDD, jitter and RTT in seconds; MOS; loss
as a ratio."""


# --------------------------------------------------------------------------- window


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list (exact: no interpolation, no buckets)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Quantiles:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Quantiles:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None, None)
        return cls(
            len(ordered),
            quantile(ordered, 0.50),
            quantile(ordered, 0.95),
            quantile(ordered, 0.99),
            sum(ordered) / len(ordered),
        )

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "n": self.count,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "mean": self.mean,
        }


@dataclass(slots=True)
class _Minute:
    start: int  # Unix minute (seconds // 60)
    samples: dict[str, list[float]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)


class LatencyWindow:
    """Raw samples of the last ``minutes`` minutes, one bucket per minute, per series.

    Exact quantiles over the samples kept. A minute keeps at most ``per_minute`` samples
    per series; beyond that it keeps a uniform random subset (reservoir sampling), which
    is still unbiased and bounds memory at load.
    """

    def __init__(
        self, minutes: int = 60, per_minute: int = 5000, rng: random.Random | None = None
    ) -> None:
        self.minutes = minutes
        self.per_minute = per_minute
        self._buckets: deque[_Minute] = deque()
        self._rng = rng or random.Random(0)

    def add(self, series: str, value: float, now: float) -> None:
        minute = int(now // 60)
        if not self._buckets or self._buckets[-1].start < minute:
            self._buckets.append(_Minute(minute))
        bucket = self._buckets[-1] if self._buckets[-1].start <= minute else None
        if bucket is None:  # a stamp older than the newest minute: file it where it belongs
            bucket = next((b for b in self._buckets if b.start == minute), None)
            if bucket is None:
                return
        self._expire(minute)
        samples = bucket.samples.setdefault(series, [])
        seen = bucket.seen.get(series, 0) + 1
        bucket.seen[series] = seen
        if len(samples) < self.per_minute:
            samples.append(value)
        else:
            slot = self._rng.randrange(seen)
            if slot < self.per_minute:
                samples[slot] = value

    def _expire(self, minute: int) -> None:
        while self._buckets and self._buckets[0].start <= minute - self.minutes:
            self._buckets.popleft()

    def _values(self, series: str, since_minute: int) -> list[float]:
        return [
            v for b in self._buckets if b.start >= since_minute for v in b.samples.get(series, ())
        ]

    def now(self, series: str, now: float, minutes: int = 5) -> Quantiles:
        """Quantiles over the last ``minutes`` minutes (the current one included)."""
        return Quantiles.of(self._values(series, int(now // 60) - minutes + 1))

    def hour(self, series: str, now: float) -> Quantiles:
        return Quantiles.of(self._values(series, int(now // 60) - self.minutes + 1))

    def per_minute_series(self, series: str, now: float) -> list[dict[str, float | int | None]]:
        """One point per minute of the window that has samples: ``{"t": unix, p50, p95, p99}``."""
        first = int(now // 60) - self.minutes + 1
        points = []
        for bucket in self._buckets:
            values = bucket.samples.get(series)
            if bucket.start >= first and values:
                points.append({"t": bucket.start * 60, **Quantiles.of(values).to_json()})
        return points


# --------------------------------------------------------------------------- metrics


def _delta_s(start: int | None, end: int | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start) / NS_PER_S


def first_invite_out(record: CallRecord) -> int | None:
    stamps = [leg.invite_out_ns for leg in record.legs if leg.invite_out_ns is not None]
    return min(stamps) if stamps else None


def call_delays(record: CallRecord) -> dict[str, float]:
    """The latency figures (seconds) a record's stamps give so far, by series name."""
    delays = {
        "invite": _delta_s(record.invite_in_ns, first_invite_out(record)),
        "ringing": _delta_s(record.first_18x_in_ns, record.first_18x_relayed_ns),
        "answer": _delta_s(record.answer_in_ns, record.answer_relayed_ns),
        "pdd": _delta_s(record.invite_in_ns, record.first_18x_relayed_ns),
        "answer_delay": _delta_s(record.invite_in_ns, record.answer_relayed_ns),
    }
    return {k: v for k, v in delays.items() if v is not None}


def loss_ratio(media: MediaStats) -> float | None:
    expected = media.rx_packets + (media.rx_loss or 0)  # None: nobody measured the loss
    return media.rx_loss / expected if expected and media.rx_loss is not None else None


def set_counts(gauge: Gauge, first: str, counts: Mapping[str, int], seen: set[str]) -> None:
    """``gauge{first, value}`` from ``counts`` (people per state of a tenant, members per status
    of a queue); a value ``seen`` before and missing now drops to 0, not stuck at its last count."""
    for value in seen - set(counts):
        gauge.labels(first, value).set(0)
    for value, count in counts.items():
        gauge.labels(first, value).set(count)
    seen.update(counts)


@dataclass(slots=True)
class _Active:
    tenant: str
    observed: set[str] = field(default_factory=set)


class Metrics:
    """The switch's Prometheus metrics, in their own registry, plus the latency window."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        window: LatencyWindow | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.window = window or LatencyWindow()
        self.clock = clock
        r = self.registry
        self.calls = Counter(
            "rufweiche_calls",
            "Calls that ended, by tenant and outcome.",
            ["tenant", "outcome"],
            registry=r,
        )
        self.post_dial_delay = Histogram(
            "rufweiche_post_dial_delay_seconds",
            "RFC 6076 session request delay: INVITE in to first 18x relayed to the caller.",
            buckets=PDD_BUCKETS,
            registry=r,
        )
        self.added_delay = Histogram(
            "rufweiche_added_delay_seconds",
            "Delay the switch adds per hop: invite (INVITE in to first INVITE out), "
            "ringing (first 18x in to 18x relayed), answer (200 in to 200 relayed).",
            ["hop"],
            buckets=ADDED_DELAY_BUCKETS,
            registry=r,
        )
        self.answer_delay = Histogram(
            "rufweiche_answer_delay_seconds",
            "INVITE in to 200 OK relayed to the caller.",
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.active_calls = Gauge(
            "rufweiche_active_calls", "Calls in progress, by tenant.", ["tenant"], registry=r
        )
        self.active_legs = Gauge(
            "rufweiche_active_legs", "Outbound legs in progress (all workers).", registry=r
        )
        self.worker_legs_in_use = Gauge(
            "rufweiche_worker_legs_in_use", "Call legs a worker holds.", ["worker"], registry=r
        )
        self.worker_legs_capacity = Gauge(
            "rufweiche_worker_legs_capacity",
            "Call legs a worker can hold (pjsua2: 4).",
            ["worker"],
            registry=r,
        )
        self.worker_up = Gauge(
            "rufweiche_worker_up", "1 when the worker is ready, else 0.", ["worker"], registry=r
        )
        self.workers_up = Gauge("rufweiche_workers_up", "Workers ready to take calls.", registry=r)
        self.media_jitter = Histogram(
            "rufweiche_media_jitter_seconds",
            "RTCP receive jitter per leg at the end of the call.",
            ["leg"],
            buckets=JITTER_BUCKETS,
            registry=r,
        )
        self.media_rtt = Histogram(
            "rufweiche_media_rtt_seconds",
            "RTCP round-trip time per leg at the end of the call.",
            ["leg"],
            buckets=RTT_BUCKETS,
            registry=r,
        )
        self.media_loss = Histogram(
            "rufweiche_media_loss_ratio",
            "Received packets lost per leg (lost / expected).",
            ["leg"],
            buckets=LOSS_BUCKETS,
            registry=r,
        )
        self.media_mos = Histogram(
            "rufweiche_media_mos",
            "E-model MOS estimate per leg (1..4.5).",
            ["leg"],
            buckets=MOS_BUCKETS,
            registry=r,
        )
        self.presence = Gauge(
            "rufweiche_presence_people",
            "People per presence state, by tenant.",
            ["tenant", "state"],
            registry=r,
        )
        # The edge's count of malformed requests (issue 14 item 7), copied from Kamailio.
        self.edge_malformed = Counter(
            "rufweiche_edge_malformed",
            "Requests the edge refused as malformed (unparsable headers, sanity's 400).",
            registry=r,
        )
        self._edge_malformed_seen = 0
        # Label children looked up once: labels() costs more than the observation itself,
        # and pre-created children export zeros, so that rate() works from the start.
        self._hop = {hop: self.added_delay.labels(hop=hop) for hop in HOPS}
        self._media = {
            kind: (
                self.media_jitter.labels(leg=kind),
                self.media_rtt.labels(leg=kind),
                self.media_loss.labels(leg=kind),
                self.media_mos.labels(leg=kind),
            )
            for kind in ("caller", "target")
        }
        self._active: dict[str, _Active] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # recent Call-IDs, not counted twice
        self._presence_states: dict[str, set[str]] = {}
        self._workers: dict[str, bool] = {}
        self._legs_in_use: dict[str, int] = {}
        self._active_per_tenant: dict[str, int] = {}

    # -- calls

    def observe(self, phase: str, record: CallRecord) -> None:
        """Update from one call report (``started``/``answered``/``ended``)."""
        if record.call_id in self._finished:
            return
        tenant = record.tenant or "-"
        active = self._active.get(record.call_id)
        if active is None:
            active = self._active[record.call_id] = _Active(tenant)
            self._count_active(tenant, +1)
        now = self.clock()
        for series, seconds in call_delays(record).items():
            if series in active.observed:
                continue
            active.observed.add(series)
            if series in HOPS:
                self._hop[series].observe(seconds)
            elif series == "pdd":
                self.post_dial_delay.observe(seconds)
            else:
                self.answer_delay.observe(seconds)
            if series in SERIES:
                self.window.add(series, seconds, now)
        if phase == "ended":
            del self._active[record.call_id]
            self._count_active(active.tenant, -1)
            self._finished[record.call_id] = None
            if len(self._finished) > 4096:
                self._finished.popitem(last=False)
            self.calls.labels(tenant=tenant, outcome=record.outcome or "unknown").inc()
            self._observe_media(record, now)

    def _observe_media(self, record: CallRecord, now: float) -> None:
        pairs = [("caller", record.media)] + [("target", leg.media) for leg in record.legs]
        for kind, media in pairs:
            if media is None:
                continue
            jitter, rtt, loss, mos = self._media[kind]
            if media.jitter_ms is not None:
                jitter.observe(media.jitter_ms / 1000)
                self.window.add("jitter", media.jitter_ms / 1000, now)
            if media.rtt_ms is not None:
                rtt.observe(media.rtt_ms / 1000)
                self.window.add("rtt", media.rtt_ms / 1000, now)
            ratio = loss_ratio(media)
            if ratio is not None:
                loss.observe(ratio)
                self.window.add("loss", ratio, now)
            if media.mos is not None:
                mos.observe(media.mos)
                self.window.add("mos", media.mos, now)

    def _count_active(self, tenant: str, delta: int) -> None:
        count = self._active_per_tenant.get(tenant, 0) + delta
        self._active_per_tenant[tenant] = count
        self.active_calls.labels(tenant=tenant).set(count)

    def forget_worker_calls(self, call_ids: Iterable[str]) -> None:
        """A worker died under these calls: count them as ``aborted`` and drop them from
        the active gauges (their records are closed as aborted by the writer)."""
        for call_id in call_ids:
            call = self._active.pop(call_id, None)
            if call is None:
                continue
            self._count_active(call.tenant, -1)
            self._finished[call_id] = None
            self.calls.labels(tenant=call.tenant, outcome="aborted").inc()

    # -- workers and presence

    def set_worker(
        self, worker: str, *, up: bool, in_use: int | None = None, capacity: int | None = None
    ) -> None:
        self._workers[worker] = up
        self.worker_up.labels(worker=worker).set(1 if up else 0)
        self.workers_up.set(sum(self._workers.values()))
        if not up:
            in_use = 0
        if in_use is not None:
            self._legs_in_use[worker] = in_use
            self.worker_legs_in_use.labels(worker=worker).set(in_use)
        if capacity is not None:
            self.worker_legs_capacity.labels(worker=worker).set(capacity)
        self.active_legs.set(sum(self._legs_in_use.values()))

    def set_worker_legs(self, worker: str, in_use: int, capacity: int) -> None:
        """From the worker's ``{"op": "legs"}`` message."""
        self.set_worker(
            worker, up=self._workers.get(worker, True), in_use=in_use, capacity=capacity
        )

    def set_presence(self, tenant: str, counts: Mapping[str, int]) -> None:
        """People per state for one tenant; states missing from ``counts`` drop to 0."""
        set_counts(self.presence, tenant, counts, self._presence_states.setdefault(tenant, set()))

    def set_edge_malformed(self, total: int) -> None:
        """The edge's own count since it started; a smaller one means a new edge."""
        grown = total - self._edge_malformed_seen if total >= self._edge_malformed_seen else total
        self._edge_malformed_seen = total
        if grown > 0:
            self.edge_malformed.inc(grown)

    def watch_records(self, health: Callable[[], Mapping[str, Any]]) -> None:
        """Issue 14: expose the record writer's durability, read at every scrape from
        ``health`` (:meth:`switch.records.writer.RecordWriter.health`)."""
        self.registry.register(_RecordsCollector(health))

    @property
    def metric_names(self) -> set[str]:
        """Every sample name the registry can expose (``_bucket``, ``_total``, ... included)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",),
        }
        return {
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        }


class _RecordsCollector(Collector):
    """``rufweiche_records_*``: backlog in memory, its bound, durable 0/1, lost, reserve."""

    def __init__(self, health: Callable[[], Mapping[str, Any]]) -> None:
        self._health = health

    def describe(self) -> Iterable[Metric]:
        return []  # names are known only at collect time; no describe-time work

    def collect(self) -> Iterable[Metric]:
        h = self._health()
        yield GaugeMetricFamily(
            "rufweiche_records_backlog",
            "Call-record items held in memory only (no database, no spool could take them).",
            value=h["backlog"],
        )
        yield GaugeMetricFamily(
            "rufweiche_records_backlog_max",
            "The bound of that backlog; beyond it records are dropped.",
            value=h["backlog_max"],
        )
        yield GaugeMetricFamily(
            "rufweiche_records_durable",
            "1 when every call record is on disk (database or spool), 0 when some are not.",
            value=1.0 if h["durable"] else 0.0,
        )
        yield GaugeMetricFamily(
            "rufweiche_records_spool_pending",
            "1 while records wait in a spool or in memory for the database.",
            value=1.0 if h["spool_pending"] else 0.0,
        )
        yield GaugeMetricFamily(
            "rufweiche_records_reserve_bytes",
            "The disk space held in reserve for the spool (0 once given back).",
            value=h["reserve_bytes"],
        )
        yield CounterMetricFamily(
            "rufweiche_records_lost",
            "Call-record reports dropped because the in-memory backlog was full.",
            value=h["lost"],
        )
