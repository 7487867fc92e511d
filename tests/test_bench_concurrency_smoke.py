"""bench/concurrency.py: its delay histogram, and a tiny run that prints both rows."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from typing import Literal

import pytest

from bench import rtpblast
from bench.media import SO_TIMESTAMPNS
from bench.rtpload import BACK, FORWARD, Direction, Generator
from tests.helpers.processes import REPO, run_ok


def test_direction_counts_loss_per_call_and_reads_quantiles_from_the_histogram() -> None:
    way = Direction()
    for _ in range(10):
        way.sent_by(1)
        way.sent_by(2)
    for k in range(10):
        way.add(0.0001 * (k + 1), 1)  # 0.1 .. 1.0 ms
    for _ in range(7):
        way.add(0.0005, 2)
    out = way.summary()
    assert (out["sent"], out["received"], out["lost"]) == (20, 17, 3)
    assert out["calls_with_loss"] == 1
    assert out["most_lost_in_one_call"] == 3
    assert out["p50_ms"] == pytest.approx(0.505, abs=0.011)
    assert out["p99_ms"] == pytest.approx(1.0, abs=0.011)
    assert out["max_ms"] == 1.0


needs_cc = pytest.mark.skipif(
    rtpblast.available() is not None, reason=f"the C engine: {rtpblast.available()}"
)


def _side() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@needs_cc
def test_the_c_engine_times_the_packets_of_both_sides_inside_the_window() -> None:
    caller, callee, silent = _side(), _side(), _side()
    blast = rtpblast.Blaster.start()
    try:
        blast.leg(1, FORWARD, caller, rtp=True)
        blast.leg(2, BACK, callee, rtp=True)
        blast.leg(3, FORWARD, silent, rtp=False)  # a short call's side: sends nothing
        blast.aim(1, callee.getsockname())
        blast.aim(2, caller.getsockname())
        blast.aim(3, callee.getsockname())
        time.sleep(0.2)  # before the window: sent, not counted
        t0 = time.monotonic()
        blast.start_window()
        time.sleep(0.5)
        blast.aim(2, None)  # the callee stops sending (a BYE)
        t_bye = time.monotonic()
        time.sleep(0.3)
        blast.stop_window()
        t1 = time.monotonic()
        time.sleep(0.1)
        figures = blast.report()
        blast.drop(1)
    finally:
        blast.close()
        for sock in (caller, callee, silent):
            sock.close()
    forward, back = figures["ways"]
    # A packet per 20 ms tick, for as long as the window (or the callee's stream) lasted:
    # timed here, so that a slow machine's late sleeps do not fail the count.
    assert abs(forward["sent"] - (t1 - t0) / 0.020) <= 3
    assert forward["received"] == forward["sent"]
    assert abs(back["sent"] - (t_bye - t0) / 0.020) <= 3  # then aimed nowhere
    assert back["received"] == back["sent"]
    assert set(forward["senders"]) == {"1"}  # the silent side sent nothing
    assert forward["senders"]["1"] == [forward["sent"], forward["received"]]
    assert forward["late"] == 0
    assert forward["maximum"] < 0.05  # loopback: well under 50 ms
    assert sum(n for _bin, n in forward["hist"]) == forward["received"]
    assert 40 <= len(figures["lateness"]) <= 60  # a tick per 20 ms from the window's start


@pytest.mark.parametrize("engine", ["python", pytest.param("c", marks=needs_cc)])
def test_the_generator_calls_its_own_callee_and_counts_every_packet(
    engine: Literal["python", "c"],
) -> None:
    async def run() -> tuple[Generator, int]:
        gen = Generator(("127.0.0.1", 0), "uas", engine=engine)
        async with gen:
            gen.target = ("127.0.0.1", gen.uas_port)  # the callee answers the caller directly
            held = await gen.place(3, rate=50)
            await asyncio.sleep(0.2)
            gen.start_window()
            await asyncio.sleep(0.6)
            gen.stop_window()
            await asyncio.sleep(0.2)
            gen.collect()
            byes = await asyncio.gather(*(gen.bye(d) for d in held))
        return gen, sum(1 for b in byes if b == 200)

    gen, hung_up = asyncio.run(run())
    assert hung_up == 3
    for way in gen.ways:
        out = way.summary()
        assert out["sent"] >= 3 * 25  # three calls, 0.6 s of 20 ms packets each
        assert out["lost"] == 0
        assert out["calls_with_loss"] == 0
        assert out["p99_ms"] is not None
        assert out["p99_ms"] < 50
    assert gen.pace()["ticks"] >= 25


@pytest.mark.peer
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="a private network namespace needs root")
@pytest.mark.skipif(
    not (shutil.which("kamailio") and shutil.which("rtpengine")), reason="needs the peers"
)
def test_tiny_concurrency_run_prints_both_rows() -> None:
    args = ["--calls", "2", "--seconds", "2", "--short-rate", "2", "--spare-workers", "1"]
    out = run_ok([sys.executable, "-m", "bench", "concurrency", "--", *args], cwd=REPO, timeout=110)
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert [line.split("|")[2].strip() for line in rows] == ["rtpengine", "switch"]
    for line in rows:
        assert line.split("|")[3].strip() == "2/2"  # both calls held
        assert "rtpengine" in line.split("|")[10]  # CPU of the relay reported
