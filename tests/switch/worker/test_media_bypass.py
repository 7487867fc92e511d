"""Media bypass against real peers (issue 16): RTP flows caller ↔ callee, not via pjsua2.

A small SIP caller (bench/media.py) calls a worker started with ``--media-bypass``; the
callee is SIPp (bench/scenarios/uas_reinvite.xml) whose SDP names a test-owned socket.
Shown on the wire: the worker's 200 names the callee's own media address, the callee gets
a re-INVITE naming the caller's, and the caller's bursts arrive. Without the flag the
worker's 200 names pjsua2's port (the bridge), which the same test tells apart. Through
Kamailio + rtpengine (the edge's flags for the worker side) the audio arrives as well.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench import media
from bench.media_path import open_row
from switch.edge.rtpengine import realtime_allowed
from switch.pjsua.clock import CLOCK_PRIORITY
from tests.helpers.processes import thread_policies

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not shutil.which("sipp"), reason="needs SIPp"),
]


def _invites_at_callee(workdir: Path) -> list[str]:
    """The SDP media lines of every INVITE the callee SIPp received (-trace_msg)."""
    text = "".join(p.read_text(errors="replace") for p in workdir.glob("*_messages.log"))
    found = []
    for block in text.split("received")[1:]:
        if re.search(r"^\s*INVITE sip:", block, re.MULTILINE):
            m = re.search(r"m=audio (\d+)", block)
            found.append(m.group(1) if m else "")
    return found


@pytest.mark.parametrize("name", ["bypass", "worker"])
def test_bypass_sends_each_side_the_others_media_address(tmp_path: Path, name: str) -> None:
    with contextlib.ExitStack() as stack:
        row = open_row(name, tmp_path / name, stack, uas_extra=("-trace_msg",))
        out = media.measure((row.host, row.port), row.rx, 2.0, user=row.user)
        callee_port = row.rx.getsockname()[1]
    assert out["bursts_heard"] == out["bursts_sent"], out
    assert out["bursts_sent"] != 0, out
    told = int(str(out["remote_media"]).rsplit(":", 1)[1])
    invites = _invites_at_callee(tmp_path / name)
    if name == "bypass":
        assert told == callee_port, "the caller's 200 names the callee's own RTP port"
        assert len(invites) == 2, invites  # INVITE, then the bypass re-INVITE
        assert invites[1] != invites[0], "the re-INVITE names the caller, not pjsua2"
    else:
        assert told != callee_port, "without bypass the caller talks to pjsua2's bridge"
        assert len(invites) == 1, invites


def test_bypass_through_rtpengine_does_not_latch_onto_pjsua(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        row = open_row("rtpengine_bypass", tmp_path / "r", stack)
        out = media.measure((row.host, row.port), row.rx, 2.0, user=row.user)
    assert out["bursts_heard"] == out["bursts_sent"], out
    assert out["bursts_sent"] != 0, out
    assert out["packets_received"] == out["packets_sent"], out


def _thread_names(pid: int) -> set[str]:
    names = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            names.add((task / "comm").read_text().strip())
    return names


@pytest.mark.parametrize("name", ["bypass", "worker"])
def test_the_bridge_clock_runs_only_while_the_bridge_carries_audio(
    tmp_path: Path, name: str
) -> None:
    """pjsua's null sound device ticks a ``clock`` thread every 10 ms (switch/pjsua/clock.py):
    a bypassed call stops it once its re-INVITE is done, a bridged call keeps it."""
    with contextlib.ExitStack() as stack:
        row = open_row(name, tmp_path / name, stack)
        worker_pid = row.pids[0]
        assert "clock" not in _thread_names(worker_pid), "no call yet: no clock"
        with ThreadPoolExecutor(max_workers=1) as pool:
            call = pool.submit(media.measure, (row.host, row.port), row.rx, 4.0, user=row.user)
            time.sleep(2.5)  # set-up, the bypass re-INVITE and the clock's 0.5 s linger
            during = []
            for _ in range(10):
                during.append(_thread_names(worker_pid))
                time.sleep(0.1)
            priorities = thread_policies(worker_pid)
            out = call.result(timeout=30)
        assert out["bursts_heard"] == out["bursts_sent"] != 0, out
        clocked = sum("clock" in names for names in during)
        if name == "bypass":
            assert clocked == 0, f"a bypassed call kept the clock in {clocked} of 10 samples"
        else:
            assert clocked == 10, f"a bridged call lost its clock in {10 - clocked} samples"
            if realtime_allowed(CLOCK_PRIORITY):  # the clock and the RTP pump at SCHED_RR
                rr = (os.SCHED_RR, CLOCK_PRIORITY)
                assert priorities["clock"] == {rr}, priorities
                assert priorities["main"] == {rr}, priorities
        deadline = time.monotonic() + 3.0  # the call has ended: the clock stops after it
        while "clock" in _thread_names(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "clock" not in _thread_names(worker_pid), "the clock ran on after the call"
        assert thread_policies(worker_pid)["main"] == {(os.SCHED_OTHER, 0)}, "back to normal"
