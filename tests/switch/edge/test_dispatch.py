"""The dispatcher in front of SIPp stand-in workers: spread, failover, load cap, pacing.

The caller is a SIPp UAC on 127.0.0.1, configured as a trunk; the workers answer the
dispatcher's OPTIONS pings (PEERS.md §6) so they stay active.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.helpers.edge import (
    NUMBER,
    EdgeFactory,
    Starter,
    needs_kamailio,
    sipp_caller,
    sipp_worker,
    trunk_edge,
)
from tests.helpers.ports import free_port
from tests.helpers.processes import Process
from tests.helpers.sipp import count_requests, sipp_stats

pytestmark = [pytest.mark.peer, needs_kamailio]


async def answering_workers(tmp_path: Path, start: Starter) -> tuple[list[int], list[Process]]:
    """Two SIPp workers that take every call, started; their ports and processes."""
    ports = [free_port(tcp=True), free_port(tcp=True)]
    return ports, [await start(sipp_worker(tmp_path, p)) for p in ports]


async def invites_offered(tmp_path: Path, ports: list[int], workers: list[Process]) -> list[int]:
    """Stop the ``workers`` (SIPp writes its message file out at exit); the INVITEs each
    of them (on ``ports``, in that order) got."""
    for worker in workers:
        await worker.stop()
    return [count_requests(tmp_path / f"worker-{p}.msg", "INVITE") for p in ports]


async def test_calls_spread_over_two_workers(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    ports, workers = await answering_workers(tmp_path, start)
    edge = await start_edge(**trunk_edge(*ports, maxload=10))
    caller = await start(
        sipp_caller(tmp_path, edge.settings.listen_port, NUMBER, calls=20, rate=40, hold_ms=300)
    )
    assert await caller.wait(15) == 0, caller.output()
    got = await invites_offered(tmp_path, ports, workers)
    assert sum(got) == 20
    # Call load (alg 10) sends each call to the least loaded worker: both carry a share.
    assert min(got) >= 5, got


async def busy_and_answering(tmp_path: Path, start: Starter) -> tuple[int, int, list[Process]]:
    """Two SIPp workers, started: one answers every INVITE with 503, the other takes the
    call; their ports and processes."""
    busy, answering = free_port(tcp=True), free_port(tcp=True)
    workers = [
        await start(sipp_worker(tmp_path, busy, "worker_busy.xml")),
        await start(sipp_worker(tmp_path, answering)),
    ]
    return busy, answering, workers


async def test_failover_from_a_worker_answering_503(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    busy, good, workers = await busy_and_answering(tmp_path, start)
    edge = await start_edge(**trunk_edge(busy, good, maxload=10))
    # Calls overlap (500 ms at 10/s): the good worker carries load, so call load picks the
    # busy one (no load: its calls fail) first, and its 503 must fail over to the good one.
    caller = await start(
        sipp_caller(tmp_path, edge.settings.listen_port, NUMBER, calls=10, rate=10, hold_ms=500)
    )
    assert await caller.wait(15) == 0, caller.output()
    assert sipp_stats(tmp_path / "caller.csv")["SuccessfulCall(C)"] == 10
    for worker in workers:
        await worker.stop()  # SIPp writes its message file out at exit
    assert count_requests(tmp_path / f"worker-{good}.msg", "INVITE") == 10
    assert count_requests(tmp_path / f"worker-{busy}.msg", "INVITE") >= 1


async def test_all_workers_full_gets_503_from_the_edge(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    ports, workers = await answering_workers(tmp_path, start)
    edge = await start_edge(**trunk_edge(*ports, maxload=2))
    port = edge.settings.listen_port
    caller = await start(sipp_caller(tmp_path, port, NUMBER, calls=6, rate=100, hold_ms=2000))
    await caller.wait(15)
    stats = sipp_stats(tmp_path / "caller.csv")
    assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == (4, 2)
    assert "every worker is full" in edge.log_tail(200)
    # BYE released the load (ds_load_update): the next call gets a worker again.
    again = await start(sipp_caller(tmp_path, port, NUMBER, name="again"))
    assert await again.wait(10) == 0, again.output()
    offered = sum(await invites_offered(tmp_path, ports, workers))
    assert offered == 4 + 1  # never more than maxload at once, then the one after


async def test_pacing_caps_new_calls_per_worker_and_second(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    ports, workers = await answering_workers(tmp_path, start)
    edge = await start_edge(**trunk_edge(*ports, maxload=10, rate=2))
    caller = await start(
        sipp_caller(tmp_path, edge.settings.listen_port, NUMBER, calls=12, rate=200, hold_ms=50)
    )
    await caller.wait(15)
    offered = sum(await invites_offered(tmp_path, ports, workers))
    stats = sipp_stats(tmp_path / "caller.csv")
    # 2 per worker and second; the 60 ms burst may straddle one pipelimit interval.
    assert 4 <= offered <= 8, offered
    assert stats["SuccessfulCall(C)"] == offered
    assert stats["FailedCall(C)"] == 12 - offered
    assert "at its rate limit" in edge.log_tail(200)


async def test_dead_worker_is_skipped_and_marked_inactive(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    dead, good = free_port(tcp=True), free_port(tcp=True)  # nothing listens on ``dead``
    await start(sipp_worker(tmp_path, good))
    # Listed last: with equal load, call load picks the last entry, so the first call tries
    # the dead worker, times out (no 100 Trying in 500 ms) and fails over.
    edge = await start_edge(**trunk_edge(good, dead, maxload=10), worker_timeout_ms=500)
    caller = await start(
        sipp_caller(tmp_path, edge.settings.listen_port, NUMBER, calls=6, rate=6, hold_ms=100)
    )
    assert await caller.wait(15) == 0, caller.output()
    kamcmd = await asyncio.create_subprocess_exec(
        *("kamcmd", "-s", f"unix:{edge.paths.ctl_socket}", "dispatcher.list"),
        stdout=asyncio.subprocess.PIPE,
    )
    listing = (await kamcmd.communicate())[0].decode()
    flags = dict(re.findall(r"URI: sip:127\.0\.0\.1:(\d+)\s+FLAGS: (\w+)", listing))
    assert flags[str(dead)].startswith("I"), listing  # inactive (by timeout or by ping)
    assert flags[str(good)].startswith("A"), listing


async def test_failover_never_offers_a_full_worker_more(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    busy, held, workers = await busy_and_answering(tmp_path, start)
    settings = trunk_edge(busy, held, maxload=10)
    settings["workers"] = [
        {"uri": f"sip:127.0.0.1:{busy}", "maxload": 10},
        {"uri": f"sip:127.0.0.1:{held}", "maxload": 1},
    ]
    edge = await start_edge(**settings)
    port = edge.settings.listen_port
    first = await start(sipp_caller(tmp_path, port, NUMBER, hold_ms=1500, name="first"))
    await asyncio.sleep(0.3)  # ``held`` now carries its one call
    # These go to ``busy`` (503); failover must not hand them to the full ``held``.
    more = await start(sipp_caller(tmp_path, port, NUMBER, calls=3, rate=10, name="more"))
    await more.wait(10)
    assert await first.wait(10) == 0, first.output()
    for worker in workers:
        await worker.stop()
    assert sipp_stats(tmp_path / "more.csv")["FailedCall(C)"] == 3
    assert count_requests(tmp_path / f"worker-{held}.msg", "INVITE") == 1
    assert count_requests(tmp_path / f"worker-{busy}.msg", "INVITE") == 3
