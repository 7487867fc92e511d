"""What the dashboard shows, computed without a browser or a clock that moves."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rules.presence import PresenceState
from switch.access.policy import EVERYTHING, Scope
from switch.call.calllog import CallRecord, MediaStats
from switch.metrics import LatencyWindow
from switch.records.writer import RecordWriter
from switch.web.dashboard import Budgets, DashboardState, LiveFeed
from tests.helpers.records import make_record, same_call

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC).timestamp()


def state() -> DashboardState:
    return DashboardState(LatencyWindow())


def test_active_calls_ringing_answered_and_gone() -> None:
    s = state()
    ringing = make_record(started_wall=NOW - 10, caller="+4917112345678")
    s.observe("started", ringing)
    talking = make_record(
        started_wall=NOW - 60, answer_in_ms=5000, answer_relayed_ms=5000.5, by_service=True
    )
    s.observe("answered", talking)
    snap = s.snapshot(NOW)
    calls = {c["call_id"]: c for c in snap["active_calls"]}
    assert calls[ringing.call_id]["state"] == "ringing"
    assert calls[ringing.call_id]["caller"] == "+491********78"
    assert calls[talking.call_id]["state"] == "answered"
    assert calls[talking.call_id]["answered"] == pytest.approx(NOW - 55, abs=0.01)
    assert calls[talking.call_id]["by_service"] is True
    assert [c["call_id"] for c in snap["active_calls"]] == [talking.call_id, ringing.call_id]
    s.observe(
        "ended",
        same_call(ringing, outcome="cancelled", ended_ms=9000),
    )
    assert [c["call_id"] for c in s.snapshot(NOW)["active_calls"]] == [talking.call_id]
    assert s.forget_worker("w1") == [talking.call_id]
    assert s.snapshot(NOW)["active_calls"] == []
    # The lost call counts for today: answered by the service before the worker died.
    (today,) = s.snapshot(NOW)["today"]
    assert (today["calls"], today["answered_service"], today["missed"]) == (2, 1, 1)


def answered_record(tenant: str, started_wall: float, by_service: bool = False) -> CallRecord:
    return make_record(
        tenant=tenant,
        started_wall=started_wall,
        answer_in_ms=3000.0,
        answer_relayed_ms=3000.5,
        outcome="answered",
        ended_ms=9e4,
        by_service=by_service,
    )


def test_calls_today_count_per_business_and_roll_over_at_midnight() -> None:
    s = state()
    s.observe("ended", answered_record(tenant="a", started_wall=NOW - 100))
    s.observe("ended", answered_record(tenant="a", started_wall=NOW - 90, by_service=True))
    s.observe("ended", make_record(tenant="a", started_wall=NOW - 80, outcome="missed", ended_ms=1))
    s.observe(
        "ended", make_record(tenant="b", started_wall=NOW - 70, outcome="rejected", ended_ms=1)
    )
    today = {t["tenant"]: t for t in s.snapshot(NOW)["today"]}
    assert today["a"] == {
        "tenant": "a",
        "calls": 3,
        "answered_owner": 1,
        "answered_service": 1,
        "missed": 1,
    }
    assert today["b"]["missed"] == 1
    tomorrow = NOW + 86_400
    assert s.snapshot(tomorrow)["today"] == []  # a new day shows nothing yet
    s.observe("ended", make_record(tenant="b", started_wall=tomorrow, outcome="missed", ended_ms=1))
    s.observe("ended", make_record(tenant="a", started_wall=NOW, outcome="missed", ended_ms=1))
    assert [(t["tenant"], t["calls"]) for t in s.snapshot(tomorrow)["today"]] == [("b", 1)]


def test_red_flags_for_each_budget() -> None:
    s = DashboardState(LatencyWindow(), Budgets())
    assert s.flags(NOW) == []
    for _ in range(99):
        s.window.add("invite", 0.001, NOW)
        s.window.add("pdd", 0.5, NOW)
    s.window.add("invite", 0.004, NOW)
    assert s.flags(NOW) == []  # p99 is 1 ms: 99 of 100 samples
    for _ in range(5):
        s.window.add("invite", 0.009, NOW)
        s.window.add("pdd", 4.0, NOW)
    s.window.add("mos", 3.2, NOW)
    s.set_worker("w2", up=False)
    s.set_worker("w1", up=True, in_use=2, capacity=4)
    flags = s.flags(NOW)
    assert [f["code"] for f in flags] == ["worker_down", "invite_delay", "pdd", "mos"]
    assert flags[0]["message"] == "worker w2 is down"
    assert flags[1]["message"] == "added INVITE delay p99 9.0 ms > 5 ms"
    assert flags[2]["message"] == "post-dial delay p99 4.00 s > 3 s"
    assert flags[3]["message"] == "median MOS 3.20 < 3.6"
    # Ten minutes later the samples have left the "now" window: no latency flags.
    assert [f["code"] for f in s.flags(NOW + 600)] == ["worker_down"]


@dataclass
class _Record:  # shaped like presence.model.PresenceRecord
    state: PresenceState
    since: datetime


def test_presence_board_takes_states_or_records() -> None:
    s = state()
    since = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    s.set_presence("a", {"jan": PresenceState.BUSY, "anna": _Record(PresenceState.DND, since)})
    s.set_presence("b", {"tom": "away"})
    board = s.snapshot(NOW)["presence"]
    assert board["a"]["jan"] == {"state": "busy", "since": None}
    assert board["a"]["anna"] == {"state": "dnd", "since": since.timestamp()}
    assert list(board["a"]) == ["anna", "jan"]
    assert board["b"]["tom"]["state"] == "away"


async def test_feed_wakes_subscribers_and_shares_one_rendering() -> None:
    clock = [NOW]
    feed = LiveFeed(state(), min_interval=0.01, refresh=5, clock=lambda: clock[0])
    one, two = feed.stream(), feed.stream()
    first_one, first_two = await anext(one), await anext(two)
    assert first_one is first_two  # same change, same moment: rendered once
    assert feed.subscribers == 2
    record = make_record(started_wall=NOW)
    waiting = asyncio.ensure_future(anext(one))
    await asyncio.sleep(0)
    feed.observe("started", record)
    clock[0] += 1
    update = await asyncio.wait_for(waiting, 2)
    assert [c["call_id"] for c in update["active_calls"]] == [record.call_id]
    feed.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(one), 2)
    await two.aclose()
    assert feed.subscribers == 0


async def test_a_lone_change_is_pushed_at_once_and_a_burst_is_coalesced() -> None:
    feed = LiveFeed(state(), min_interval=0.3, refresh=5)
    stream = feed.stream()
    await anext(stream)
    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(anext(stream))  # as the SSE handler: ask again at once
    await asyncio.sleep(0.35)  # the pause after the first push is over
    assert not waiting.done()
    t0 = loop.time()
    feed.observe("started", make_record(started_wall=NOW))
    await asyncio.wait_for(waiting, 2)
    assert loop.time() - t0 < 0.1  # not held back by the rate limit
    for _ in range(5):  # a burst right after a push: one more push, after the pause
        feed.observe("started", make_record(started_wall=NOW))
    t1 = loop.time()
    burst = await asyncio.wait_for(anext(stream), 2)
    assert loop.time() - t1 >= 0.25
    assert len(burst["active_calls"]) == 6
    await stream.aclose()


async def test_today_is_seeded_from_the_records_after_a_restart(tmp_path: Path) -> None:
    midnight = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    async with RecordWriter(tmp_path / "calls.sqlite3") as writer:
        writer.submit("ended", answered_record("a", midnight + 60, by_service=True))
        writer.submit("ended", answered_record("a", midnight + 120))
        writer.submit(
            "ended",
            make_record(tenant="b", started_wall=midnight + 5, outcome="missed", ended_ms=1),
        )
        writer.submit(
            "ended",
            make_record(tenant="b", started_wall=midnight - 5, outcome="missed", ended_ms=1),
        )
        writer.submit("started", make_record(tenant="b", started_wall=midnight + 9))  # active
        await writer.flush()
        feed = LiveFeed(state(), clock=lambda: NOW)
        await feed.load_today(writer.recent_calls)
    today = {t["tenant"]: t for t in feed.snapshot()["today"]}
    assert (today["a"]["calls"], today["a"]["answered_service"], today["a"]["answered_owner"]) == (
        2,
        1,
        1,
    )
    assert (today["b"]["calls"], today["b"]["missed"]) == (1, 1)  # yesterday's is not today's


def test_snapshot_in_a_scope_shows_only_its_tenants() -> None:
    state = DashboardState(LatencyWindow())
    now = time.time()
    for call_id, tenant in (("a", "mueller"), ("b", "schmidt")):
        state.observe("started", make_record(call_id=call_id, tenant=tenant, started_wall=now))
        state.observe("ended", make_record(call_id=call_id + "2", tenant=tenant, started_wall=now))
    state.set_presence("mueller", {"otto": "available"})
    state.set_presence("schmidt", {"sven": "away"})
    everything = state.snapshot(now)
    assert state.snapshot(now, EVERYTHING) == everything
    mine = state.snapshot(now, Scope(frozenset({"mueller"})))
    assert [c["tenant"] for c in mine["active_calls"]] == ["mueller"]
    assert list(mine["presence"]) == ["mueller"]
    assert [c["tenant"] for c in mine["today"]] == ["mueller"]
    assert mine["latency"] == everything["latency"]  # the switch's own figures stay
    assert len(everything["active_calls"]) == 2
    nothing = state.snapshot(now, Scope(frozenset()))
    assert (nothing["active_calls"], nothing["presence"], nothing["today"]) == ([], {}, [])


def test_the_media_card_counts_what_the_legs_figures_are_based_on() -> None:
    s = state()
    relay = answered_record("a", NOW - 100)
    relay.media = MediaStats("PCMU", rx_packets=900, rx_loss=None, source="rtpengine")
    bridged = answered_record("a", NOW - 50)
    bridged.media = MediaStats("PCMU", rx_packets=500, rx_loss=0)  # before issue 16: pjsua
    s.observe("ended", relay, now=NOW - 10)
    s.observe("ended", bridged, now=NOW - 5)
    s.observe("ended", answered_record("a", NOW - 9999), now=NOW - 3600)  # out of the window
    # The answered target legs of these records carry no figures: "none".
    assert s.snapshot(NOW)["media"]["sources"] == {"rtpengine": 1, "pjsua": 1, "none": 2}
