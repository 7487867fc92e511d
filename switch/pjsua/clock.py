"""The conference bridge's clock: running only while something in the bridge needs it.

Theory of operation
-------------------
pjsua clocks its conference bridge with a sound device; a worker has none, so it uses
pjsua's null device, whose master port runs a ``clock`` thread that wakes every frame
(10 ms here). pjsua opens that device on the first connection in the bridge and closes
it only once no call is left, so while a worker holds bypassed calls, whose audio never
enters the bridge, the thread still ticked: 0.18 % of a core per worker (issue 16,
docs/performance.md "Where the workers' CPU goes"), 100 workers for 200 calls.

:class:`BridgeClock` takes the device out of pjsua's hands. The endpoint starts with
``setNoDev()`` (no device, no clock, and pjsua does not open one on its own), calls
:meth:`BridgeClock.need` before each ``startTransmit`` (the null device opens at once,
so the first frame of a prompt or a bridged call is clocked as before) and
:meth:`BridgeClock.settle` after each poll with whether any connection is left: the
device closes again once none has been for :data:`LINGER_NS`. The pause matters: since
PJSIP 2.14 the bridge removes a port (a finished prompt, a closed recording, a leg just
bypassed) asynchronously, on its next clock tick, and a recorder's WAV header is written
only then; a clock stopped at once would leave a voicemail unfinished until the next call
used the bridge. A bypassed call then costs no clock at all; a call
whose audio runs through the bridge (a prompt, a recording, ringback, a bridged pair, a
bypass while its re-INVITE runs) is clocked exactly as before.

While the clock runs, it and the endpoint's thread (which receives the RTP: epconfig.py)
run at real-time priority (``SCHED_RR`` :data:`CLOCK_PRIORITY`, below rtpengine's media
threads) where the host allows it: a bridged call's frames then wait for no other
process, and its jitter buffer does not settle a frame deeper when the machine is busy
(issue 16, docs/performance.md "Bridge"). The thread goes back to normal priority when the
clock stops; the clock thread, started from it, inherits the policy and goes with the
device. Where the host refuses, everything is as before (logged once).

The switch happens on the endpoint's thread. ``setNoDev`` joins the clock thread; the
wheel is built with SWIG ``-threads`` and releases the GIL in the call, so a player's
``onEof2`` running on the clock thread at that moment finishes first (no deadlock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import pjsua2 as pj

log = logging.getLogger("switch.pjsua")

LINGER_NS = 500_000_000
"""How long the clock runs on after the last connection went: the bridge's pending
removals (ports, recordings) are carried out on its ticks (PJSIP 2.14+)."""


CLOCK_PRIORITY = 5
"""SCHED_RR priority of the clock and the pump while the bridge carries audio (rtpengine's
media threads: 10, switch/edge/rtpengine.py)."""


Policy = tuple[int, os.sched_param]


def _boost() -> Policy | None:
    """The calling thread to SCHED_RR :data:`CLOCK_PRIORITY`; what it had before, or None
    when the host refuses."""
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(CLOCK_PRIORITY))
    except OSError:
        return None
    return before


def _restore(before: Policy) -> None:
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, *before)


def _clamp_clock_threads() -> None:
    """pjmedia's clock raises itself to its policy's highest priority (RR 99 as root):
    bring every ``clock`` thread of this process back to :data:`CLOCK_PRIORITY`."""
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() != "clock":
                continue
            tid = int(task.name)
            if os.sched_getparam(tid).sched_priority > CLOCK_PRIORITY:
                os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(CLOCK_PRIORITY))
        except OSError:  # gone meanwhile, or not ours to change
            continue


class BridgeClock:
    """Opens pjsua's null sound device while the bridge is in use, closes it after."""

    def __init__(self, devices: Any, *, realtime: bool = True) -> None:
        self._devices = devices  # pj.AudDevManager
        self._realtime = realtime
        self._before: Policy | None = None  # the pump's policy while boosted
        self._warned = False
        self.running = False
        self._idle_since: int | None = None
        self.openings = 0
        """How often the device was opened (a figure for tests and the bench)."""
        self._devices.setNoDev()

    def need(self) -> None:
        """Before a connection in the bridge: the clock runs from now on."""
        self._idle_since = None
        if self.running:
            return
        if self._realtime:
            self._before = _boost()
            if self._before is None and not self._warned:
                self._warned = True
                log.info("bridge clock at normal priority: this host allows no real-time threads")
        try:
            self._devices.setNullDev()
        except pj.Error as exc:  # the connection is made anyway; it stays silent
            log.warning("bridge clock did not start: %s", exc.info())
            self._unboost()
            return
        if self._before is not None:
            _clamp_clock_threads()
        self.running = True
        self.openings += 1

    def wait_ms(self, now_ns: int | None = None) -> int | None:
        """While the clock lingers: milliseconds until :meth:`settle` may stop it (the
        endpoint's poll waits no longer, so an idle worker's clock does not run on for
        the loop's long wait)."""
        if not self.running or self._idle_since is None:
            return None
        now = time.monotonic_ns() if now_ns is None else now_ns
        return max(0, (self._idle_since + LINGER_NS - now) // 1_000_000 + 1)

    def settle(self, in_use: bool, now_ns: int | None = None) -> None:
        """After a poll: stop the clock once nothing in the bridge has been connected
        for :data:`LINGER_NS`."""
        if not self.running:
            return
        if in_use:
            self._idle_since = None
            return
        now = time.monotonic_ns() if now_ns is None else now_ns
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < LINGER_NS:
            return
        try:
            self._devices.setNoDev()
        except pj.Error as exc:
            log.warning("bridge clock did not stop: %s", exc.info())
            return
        self._unboost()
        self.running = False
        self._idle_since = None

    def _unboost(self) -> None:
        if self._before is not None:
            _restore(self._before)
            self._before = None


__all__ = ["CLOCK_PRIORITY", "BridgeClock"]
