"""BridgeClock against a recording stand-in for pjsua2's AudDevManager (the real device is
shown in tests/switch/worker/test_media_bypass.py, by the worker's threads)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pjsua2 as pj
import pytest

from switch.edge.rtpengine import realtime_allowed
from switch.pjsua.clock import CLOCK_PRIORITY, LINGER_NS, BridgeClock

T = TypeVar("T")


class Devices:
    def __init__(self, fail: str = "") -> None:
        self.calls: list[str] = []
        self.fail = fail

    def _call(self, name: str) -> None:
        if name == self.fail:
            raise pj.Error()
        self.calls.append(name)

    def setNoDev(self) -> None:  # pjsua2's names
        self._call("no")

    def setNullDev(self) -> None:
        self._call("null")


def test_starts_without_a_device_and_opens_it_once_for_many_connections() -> None:
    devices = Devices()
    clock = BridgeClock(devices, realtime=False)
    assert devices.calls == ["no"]
    assert not clock.running
    clock.need()
    clock.need()
    assert devices.calls == ["no", "null"]
    assert clock.running
    assert clock.openings == 1


def test_stops_only_after_the_linger_without_connections() -> None:
    devices = Devices()
    clock = BridgeClock(devices, realtime=False)
    clock.need()
    clock.settle(in_use=True, now_ns=0)
    assert clock.wait_ms(now_ns=0) is None, "in use: no linger"
    clock.settle(in_use=False, now_ns=1_000)
    assert clock.running
    assert clock.wait_ms(now_ns=1_000) == LINGER_NS // 1_000_000 + 1
    clock.settle(in_use=False, now_ns=1_000 + LINGER_NS - 1)
    assert clock.running, "still lingering"
    clock.settle(in_use=False, now_ns=1_000 + LINGER_NS)
    assert not clock.running
    assert devices.calls[-1] == "no"
    assert clock.wait_ms(now_ns=2 * LINGER_NS) is None


def test_a_connection_during_the_linger_keeps_the_clock() -> None:
    devices = Devices()
    clock = BridgeClock(devices, realtime=False)
    clock.need()
    clock.settle(in_use=False, now_ns=0)
    clock.need()  # a prompt starts while the clock lingers
    clock.settle(in_use=False, now_ns=LINGER_NS)
    assert clock.running, "the linger restarted with the new connection"
    assert devices.calls == ["no", "null"]


@pytest.mark.parametrize("fail", ["null", "no"])
def test_a_device_error_leaves_the_state_as_it_was(fail: str) -> None:
    devices = Devices(fail)
    if fail == "no":
        with pytest.raises(pj.Error):
            BridgeClock(devices, realtime=False)  # at start the endpoint reports it (EndpointError)
        return
    clock = BridgeClock(devices, realtime=False)
    clock.need()
    assert not clock.running
    assert clock.openings == 0


def _on_a_thread_of_its_own(work: Callable[[], T]) -> T:
    """Run ``work`` on a fresh thread: a priority it sets ends with the thread, not with
    the test session's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result(timeout=10)


@pytest.mark.skipif(not realtime_allowed(CLOCK_PRIORITY), reason="no real-time threads here")
def test_the_thread_runs_at_rr_only_while_the_clock_runs() -> None:
    def run() -> list[tuple[int, int]]:
        seen = [_policy()]
        clock = BridgeClock(Devices())
        clock.need()
        seen.append(_policy())
        clock.settle(in_use=False, now_ns=0)
        clock.settle(in_use=False, now_ns=LINGER_NS)
        assert not clock.running
        seen.append(_policy())
        return seen

    assert _on_a_thread_of_its_own(run) == [
        (os.SCHED_OTHER, 0),
        (os.SCHED_RR, CLOCK_PRIORITY),
        (os.SCHED_OTHER, 0),
    ]


def test_without_realtime_the_thread_keeps_its_priority() -> None:
    def run() -> tuple[int, int]:
        clock = BridgeClock(Devices(), realtime=False)
        clock.need()
        return _policy()

    assert _on_a_thread_of_its_own(run) == (os.SCHED_OTHER, 0)


def test_a_device_that_does_not_open_leaves_the_thread_normal() -> None:
    def run() -> tuple[int, int]:
        clock = BridgeClock(Devices("null"))
        clock.need()
        assert not clock.running
        return _policy()

    assert _on_a_thread_of_its_own(run) == (os.SCHED_OTHER, 0)


def _policy() -> tuple[int, int]:
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
