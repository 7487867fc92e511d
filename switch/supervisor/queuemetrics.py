"""The queues' figures (issue 19): Prometheus series per queue and business, and the counts
the dashboard and the API show (:meth:`QueueMetrics.figures`).

Labels: queue, tenant (the business), member (a person of the service), result. Never a
phone number or a Call-ID.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from switch.metrics import set_counts

WAIT_BUCKETS: Final = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
HANDLE_BUCKETS: Final = (10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 1800.0)
RESULTS: Final = ("answered", "abandoned", "overflow", "callback", "aborted", "refused")


class QueueMetrics:
    """Counters in the switch's registry, and the same counts kept for the dashboard."""

    def __init__(self, registry: CollectorRegistry, service_level_s: float = 20.0) -> None:
        self.service_level_s = service_level_s
        self.registry = registry
        self.waiting = Gauge(
            "rufweiche_queue_waiting",
            "Callers waiting now, by queue.",
            ["queue"],
            registry=registry,
        )
        self.longest = Gauge(
            "rufweiche_queue_longest_wait_seconds",
            "How long the caller waiting longest has waited, by queue.",
            ["queue"],
            registry=registry,
        )
        self.results = Counter(
            "rufweiche_queue_calls",
            "Callers who left a queue, by queue, business and result "
            "(answered, abandoned, overflow, callback, aborted, refused).",
            ["queue", "tenant", "result"],
            registry=registry,
        )
        self.within = Counter(
            "rufweiche_queue_answered_within_service_level",
            "Callers answered within the service level (20 s unless set), by queue and business.",
            ["queue", "tenant"],
            registry=registry,
        )
        self.wait = Histogram(
            "rufweiche_queue_wait_seconds",
            "Time in the queue until the caller was answered or left, by queue and business.",
            ["queue", "tenant"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.handle = Histogram(
            "rufweiche_queue_handle_seconds",
            "Talk time of answered queue calls, by queue (sum/count: average handle time).",
            ["queue"],
            buckets=HANDLE_BUCKETS,
            registry=registry,
        )
        self.member_calls = Counter(
            "rufweiche_queue_member_calls",
            "Queue calls a member answered.",
            ["queue", "member"],
            registry=registry,
        )
        self.member_talk = Counter(
            "rufweiche_queue_member_talk_seconds",
            "Talk time of a member's queue calls.",
            ["queue", "member"],
            registry=registry,
        )
        self.members = Gauge(
            "rufweiche_queue_members",
            "Members of a queue by status (available, paused, on_call, ...).",
            ["queue", "status"],
            registry=registry,
        )
        self._counts: dict[tuple[str, str, str], int] = defaultdict(int)
        self._within: dict[tuple[str, str], int] = defaultdict(int)
        self._handle: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._statuses: dict[str, set[str]] = defaultdict(set)

    def left(self, queue: str, tenant: str, result: str, waited_s: float | None) -> None:
        self.results.labels(queue=queue, tenant=tenant, result=result).inc()
        self._counts[(queue, tenant, result)] += 1
        if waited_s is None:
            return
        self.wait.labels(queue=queue, tenant=tenant).observe(waited_s)
        if result == "answered" and waited_s <= self.service_level_s:
            self.within.labels(queue=queue, tenant=tenant).inc()
            self._within[(queue, tenant)] += 1

    def answered_by(self, queue: str, member: str) -> None:
        self.member_calls.labels(queue=queue, member=member).inc()

    def call_ended(self, queue: str, member: str, talk_s: float) -> None:
        self.handle.labels(queue=queue).observe(talk_s)
        self.member_talk.labels(queue=queue, member=member).inc(talk_s)
        handle = self._handle[queue]
        handle[0] += talk_s
        handle[1] += 1

    def set_queue(
        self, queue: str, waiting: int, longest_s: float, statuses: dict[str, int]
    ) -> None:
        self.waiting.labels(queue=queue).set(waiting)
        self.longest.labels(queue=queue).set(longest_s)
        set_counts(self.members, queue, statuses, self._statuses[queue])

    def figures(self, queue: str) -> dict[str, object]:
        """Per business: how many callers ended how; answered within the service level;
        the queue's average handle time."""
        tenants: dict[str, dict[str, int]] = {}
        for (q, tenant, result), count in self._counts.items():
            if q == queue:
                tenants.setdefault(tenant, dict.fromkeys(RESULTS, 0))[result] = count
        for (q, tenant), count in self._within.items():
            if q == queue:
                tenants.setdefault(tenant, dict.fromkeys(RESULTS, 0))["within_service_level"] = (
                    count
                )
        total, calls = self._handle[queue]
        return {
            "by_tenant": tenants,
            "average_handle_s": round(total / calls, 1) if calls else None,
            "service_level_s": self.service_level_s,
        }


__all__ = ["QueueMetrics"]
