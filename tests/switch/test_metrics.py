"""Metrics from call reports, and the exact rolling latency window."""

from __future__ import annotations

import random

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from switch.metrics import LatencyWindow, Metrics, Quantiles, call_delays, quantile
from tests.helpers.records import make_record, same_call

NOW = 1_793_000_000.0


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} not exposed"
    return value


def test_observe_a_call_through_its_phases() -> None:
    metrics = Metrics(clock=lambda: NOW)
    start = make_record(invite_out_ms=1.5, ringing_in_ms=30.0, ringing_relayed_ms=30.4)
    metrics.observe("started", start)
    assert sample(metrics, "rufweiche_active_calls", tenant="tischlerei") == 1
    assert sample(metrics, "rufweiche_added_delay_seconds_count", hop="invite") == 1
    assert sample(metrics, "rufweiche_added_delay_seconds_sum", hop="invite") == pytest.approx(
        0.0015
    )
    assert sample(metrics, "rufweiche_post_dial_delay_seconds_sum") == pytest.approx(0.0304)
    answered = same_call(
        start,
        invite_out_ms=1.5,
        ringing_in_ms=30.0,
        ringing_relayed_ms=30.4,
        answer_in_ms=4000.0,
        answer_relayed_ms=4000.25,
    )
    metrics.observe("answered", answered)
    # Each figure counts once per call, however many reports carry it.
    assert sample(metrics, "rufweiche_added_delay_seconds_count", hop="invite") == 1
    assert sample(metrics, "rufweiche_added_delay_seconds_sum", hop="answer") == pytest.approx(
        0.00025
    )
    assert sample(metrics, "rufweiche_answer_delay_seconds_sum") == pytest.approx(4.00025)
    # 0.25 ms falls in the sub-millisecond buckets.
    assert sample(metrics, "rufweiche_added_delay_seconds_bucket", hop="answer", le="0.00025") == 1
    assert sample(metrics, "rufweiche_added_delay_seconds_bucket", hop="answer", le="0.0001") == 0
    ended = same_call(
        start,
        answer_in_ms=4000.0,
        answer_relayed_ms=4000.25,
        ended_ms=9000.0,
        outcome="answered",
        mos=4.1,
    )
    metrics.observe("ended", ended)
    metrics.observe("ended", ended)  # a duplicate report does not count twice
    assert sample(metrics, "rufweiche_calls_total", tenant="tischlerei", outcome="answered") == 1
    assert sample(metrics, "rufweiche_active_calls", tenant="tischlerei") == 0
    assert sample(metrics, "rufweiche_media_mos_count", leg="caller") == 1
    assert sample(metrics, "rufweiche_media_mos_count", leg="target") == 1
    assert sample(metrics, "rufweiche_media_jitter_seconds_sum", leg="caller") == pytest.approx(
        0.0045
    )
    assert sample(metrics, "rufweiche_media_loss_ratio_sum", leg="caller") == pytest.approx(5 / 505)
    assert metrics.window.now("invite", NOW).p99 == pytest.approx(0.0015)
    assert metrics.window.now("mos", NOW).count == 2


def test_no_phone_number_or_call_id_in_any_label() -> None:
    metrics = Metrics(clock=lambda: NOW)
    record = make_record(caller="+4917112345678", ended_ms=100.0, outcome="missed", mos=3.0)
    metrics.observe("ended", record)
    text = generate_latest(metrics.registry).decode()
    assert "4917112345678" not in text
    assert record.call_id not in text
    assert "+49301234567" not in text


def test_own_registry_not_the_global_one() -> None:
    metrics = Metrics()
    assert metrics.registry is not REGISTRY
    assert "rufweiche_calls_total" not in {m.name for m in REGISTRY.collect()}
    Metrics()  # a second instance must not collide


def test_workers_presence_and_names() -> None:
    metrics = Metrics()
    metrics.set_worker("w1", up=True, in_use=0, capacity=4)
    metrics.set_worker("w2", up=True, in_use=0, capacity=4)
    metrics.set_worker_legs("w1", 3, 4)
    metrics.set_worker_legs("w2", 1, 4)
    assert sample(metrics, "rufweiche_active_legs") == 4
    metrics.set_worker("w2", up=False)
    assert sample(metrics, "rufweiche_workers_up") == 1
    assert sample(metrics, "rufweiche_worker_up", worker="w2") == 0
    assert sample(metrics, "rufweiche_active_legs") == 3
    metrics.set_presence("tischlerei", {"available": 2, "dnd": 1})
    metrics.set_presence("tischlerei", {"available": 3})
    assert sample(metrics, "rufweiche_presence_people", tenant="tischlerei", state="dnd") == 0
    assert sample(metrics, "rufweiche_presence_people", tenant="tischlerei", state="available") == 3
    names = metrics.metric_names
    assert {"rufweiche_calls_total", "rufweiche_added_delay_seconds_bucket"} <= names
    families = {
        f.name for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())
    }
    assert "rufweiche_worker_legs_capacity" in families


def test_call_delays_skip_missing_and_negative_spans() -> None:
    # A plan that rings the caller locally before any 18x came in: no "ringing" hop.
    record = make_record(ringing_in_ms=None, ringing_relayed_ms=0.8, invite_out_ms=None)
    assert set(call_delays(record)) == {"pdd"}
    early = make_record(ringing_in_ms=50.0, ringing_relayed_ms=10.0)
    assert "ringing" not in call_delays(early)


def test_quantiles_are_exact_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50
    assert quantile(values, 0.99) == 99
    assert quantile(values, 1.0) == 100
    assert Quantiles.of([]).p99 is None
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)


def test_window_now_hour_series_and_expiry() -> None:
    window = LatencyWindow(minutes=60)
    start = 1_793_000_000.0 - 1_793_000_000.0 % 60
    for minute in range(90):
        for i in range(10):
            window.add("invite", 0.001 * (minute + 1) + i * 1e-6, start + minute * 60 + i)
    now = start + 89 * 60 + 30
    hour = window.hour("invite", now)
    assert hour.count == 600  # minutes 30..89 only
    assert hour.p50 is not None
    assert hour.p50 == pytest.approx(0.060, abs=0.001)
    recent = window.now("invite", now, minutes=1)
    assert recent.count == 10
    assert recent.p99 == pytest.approx(0.090009)
    series = window.per_minute_series("invite", now)
    assert len(series) == 60
    assert series[0]["t"] == start + 30 * 60
    assert window.now("pdd", now).count == 0


def test_window_bounds_memory_with_a_fair_sample() -> None:
    window = LatencyWindow(per_minute=100, rng=random.Random(1))
    for i in range(10_000):
        window.add("invite", i / 10_000, NOW)
    q = window.now("invite", NOW)
    assert q.count == 100
    assert q.p50 is not None
    assert 0.35 < q.p50 < 0.65


def test_calls_of_a_dead_worker_count_as_aborted() -> None:
    metrics = Metrics(clock=lambda: NOW)
    lost, kept = make_record(worker="w1"), make_record(worker="w2")
    metrics.observe("started", lost)
    metrics.observe("started", kept)
    metrics.forget_worker_calls([lost.call_id, "unknown@x"])
    assert sample(metrics, "rufweiche_calls_total", tenant="tischlerei", outcome="aborted") == 1
    assert sample(metrics, "rufweiche_active_calls", tenant="tischlerei") == 1
    metrics.observe("ended", make_record(call_id=lost.call_id, ended_ms=5.0, outcome="missed"))
    assert (
        metrics.registry.get_sample_value(
            "rufweiche_calls_total", {"tenant": "tischlerei", "outcome": "missed"}
        )
        is None
    )  # a late report of a call already counted does not count again
