"""The queues' Prometheus series (switch/supervisor/queuemetrics.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from switch.supervisor.queuemetrics import QueueMetrics


def test_a_member_status_nobody_has_any_more_drops_to_zero() -> None:
    registry = CollectorRegistry()
    metrics = QueueMetrics(registry)
    metrics.set_queue("heimbuero", 2, 31.5, {"available": 1, "paused": 2})
    metrics.set_queue("heimbuero", 1, 12.0, {"available": 3})

    def sample(name: str, **labels: str) -> float | None:
        labels["queue"] = "heimbuero"
        return registry.get_sample_value(f"rufweiche_queue_{name}", labels)

    assert sample("members", status="available") == 3
    assert sample("members", status="paused") == 0
    assert sample("waiting") == 1
    assert sample("longest_wait_seconds") == 12.0
