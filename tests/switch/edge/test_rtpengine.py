"""rtpengine's media threads at real-time priority where the host allows it (issue 16).

With 200 calls held, the switch's own processes beside rtpengine added +3–7 ms p99 of
delay over rtpengine alone: packets waiting for a core. ``realtime: auto`` runs rtpengine's
media ("poller") threads at SCHED_RR; the kernel decides whether we may.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from switch.edge.rtpengine import (
    MediaRelay,
    MediaRelaySettings,
    command_line,
    realtime_allowed,
    wants_realtime,
)
from tests.helpers.ports import free_port
from tests.helpers.processes import thread_policies


def test_the_command_line_asks_for_rr_only_when_told() -> None:
    settings = MediaRelaySettings(mode="on", realtime_priority=7)
    assert "--scheduling=rr" not in command_line(settings, "127.0.0.1", None)
    argv = command_line(settings, "127.0.0.1", None, realtime=True)
    assert argv[-2:] == ["--scheduling=rr", "--priority=7"]


def test_off_asks_the_kernel_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe(priority: int) -> bool:
        raise AssertionError("probed")

    monkeypatch.setattr("switch.edge.rtpengine.realtime_allowed", probe)
    assert wants_realtime(MediaRelaySettings(realtime="off")) is False


def test_the_probe_changes_no_thread_but_its_own() -> None:
    before = os.sched_getscheduler(0)
    realtime_allowed(10)
    assert os.sched_getscheduler(0) == before == os.SCHED_OTHER


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_the_kernel_answers_the_probe() -> None:
    """Root may (CAP_SYS_NICE); root without CAP_SYS_NICE and with RLIMIT_RTPRIO 0 (a
    container's root, a plain user) may not, and the switch then says so instead of
    starting rtpengine with a flag that fails."""
    script = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout);"
        "from switch.edge.rtpengine import MediaRelaySettings, realtime_allowed, wants_realtime;"
        "print(realtime_allowed(10), wants_realtime(MediaRelaySettings()))"
    )
    as_root = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert as_root.stdout.split() == ["True", "True"], as_root.stderr
    without = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"]
    unable = subprocess.run(
        [*without, "prlimit", "--rtprio=0", sys.executable, "-c", script],
        capture_output=True,
        text=True,
    )
    assert unable.returncode == 0, unable.stderr
    assert "False False" in unable.stdout
    assert "rtpengine runs at normal priority" in unable.stdout


@pytest.mark.peer
@pytest.mark.timeout(30)
@pytest.mark.skipif(not shutil.which("rtpengine"), reason="needs rtpengine-daemon")
@pytest.mark.skipif(not realtime_allowed(10), reason="this host allows no real-time threads")
def test_rtpengines_media_threads_run_at_rr_and_the_rest_normal(tmp_path: Path) -> None:
    base = free_port(span=20, even=True)
    settings = MediaRelaySettings(
        mode="on", ng_listen=f"127.0.0.1:{free_port()}", port_min=base, port_max=base + 19
    )

    async def threads() -> dict[str, set[tuple[int, int]]]:
        relay = MediaRelay(settings, public="127.0.0.1", log=tmp_path / "rtpengine.log")
        async with relay:
            assert relay.pid is not None
            return thread_policies(relay.pid)

    seen = asyncio.run(threads())
    assert seen["poller"] == {(os.SCHED_RR, 10)}, seen
    assert seen["main"] == {(os.SCHED_OTHER, 0)}, seen
    assert "Failed to set thread scheduling" not in (tmp_path / "rtpengine.log").read_text()
