"""rtpengine's state on /healthz and /metrics (issue 15).

The supervisor runs rtpengine (:class:`~switch.edge.rtpengine.MediaRelay`) and restarts it
when it dies; this reads that object at every scrape:

- ``rufweiche_media_relay_up`` 1 while the process runs, else 0;
- ``rufweiche_media_relay_restarts_total`` restarts since the switch started;
- ``detail.media_relay`` on /healthz: ``{"running", "pid", "restarts"}`` (``null`` when the
  switch runs no media relay).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from switch.edge.rtpengine import MediaRelay


def relay_detail(relay: MediaRelay | None) -> dict[str, Any] | None:
    if relay is None:
        return None
    return {"running": relay.running, "pid": relay.pid, "restarts": relay.restarts}


class MediaRelayCollector(Collector):
    """Prometheus collector over one :class:`MediaRelay`."""

    def __init__(self, relay: MediaRelay) -> None:
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "rufweiche_media_relay_up", "1 while rtpengine (the media relay) runs"
        )
        up.add_metric([], 1 if self.relay.running else 0)
        yield up
        restarts = CounterMetricFamily(
            "rufweiche_media_relay_restarts", "times the switch restarted rtpengine"
        )
        restarts.add_metric([], self.relay.restarts)
        yield restarts


def register(relay: MediaRelay, registry: CollectorRegistry) -> MediaRelayCollector:
    collector = MediaRelayCollector(relay)
    registry.register(collector)
    return collector


__all__ = ["MediaRelayCollector", "register", "relay_detail"]
