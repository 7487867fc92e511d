"""The Worker's process loop in-process, on the scripted SIP side: control messages, stop."""

from __future__ import annotations

from rules import DialPlanSet, load_plan_text
from switch.control import messages as control
from switch.worker.channel import ControlChannel
from switch.worker.config import WorkerConfig
from switch.worker.loop import IDLE_POLL_MS, MAX_POLL_MS, Worker
from tests.helpers.fakesip import BUSINESS, DESK, SEQUENTIAL, Answer, FakeSip, Ring, plan_text


def worker(sip: FakeSip) -> Worker:
    config = WorkerConfig(name="w1", host="127.0.0.1", port=5060, dialplans=(), grace=0.0)
    plans = DialPlanSet([load_plan_text(plan_text(SEQUENTIAL))])
    return Worker(config, sip, plans, ControlChannel(None))


def test_drain_answers_new_calls_503() -> None:
    sip = FakeSip({DESK: [Ring()]})
    w = worker(sip)
    w.channel.inbox.put(control.Drain())
    w.step()
    caller = sip.invite(BUSINESS)
    w.step()
    (reject,) = sip.did("reject")
    assert reject[1:3] == (caller, 503)
    assert sip.did("dial") == []


def test_presence_snapshot_replaces_the_tenants_states() -> None:
    w = worker(FakeSip())
    w.on_control(control.Presence("t", {"jan": "dnd"}))
    assert {p: str(s) for p, s in w.driver.presence["t"].items()} == {"jan": "dnd"}
    w.on_control(control.Presence("t", {}))
    assert w.driver.presence["t"] == {}


def test_stop_without_calls_ends_the_loop() -> None:
    w = worker(FakeSip())
    w.on_control(control.Stop(0.0))
    assert w.run() == 0


def test_stop_after_grace_ends_the_calls_in_flight() -> None:
    sip = FakeSip({DESK: [Ring()]})
    w = worker(sip)
    caller = sip.invite(BUSINESS)
    w.step()
    w.request_stop(0.0)
    assert w.run() == 0
    assert ("cancel", sip.handle_of(DESK)) in sip.log
    assert sip.legs[caller].ended


def test_a_held_call_without_media_services_lets_the_loop_wait_long() -> None:
    # Issue 16: 200 held calls take 100 workers; at a 100 ms poll each cost 0.2 % of a core
    # doing nothing. A bridged call wakes the loop only by SIP, timers or control messages.
    sip = FakeSip({DESK: [Answer()]})
    w = worker(sip)
    caller = sip.invite(BUSINESS)
    for _ in range(4):
        w.step()
    assert sip.did("bridge"), sip.log
    assert w.driver.calls
    assert not w.driver.ticking
    # At most until a cancelled ring timer's old deadline (the heap drops it lazily).
    assert MAX_POLL_MS < w._poll_ms() <= IDLE_POLL_MS
    sip.caller_hangs_up(caller)
    for _ in range(4):
        w.step()
    assert not w.driver.calls


def test_a_callback_ringing_keeps_the_poll_short() -> None:
    w = worker(FakeSip())
    w.driver.queueing.callbacks[99] = object()  # type: ignore[assignment]
    assert w.driver.ticking
    assert w._poll_ms() <= MAX_POLL_MS
