"""Flood ban (pike + htable), scanner drop, and the toll-fraud guard, from 127.0.0.x sources.

Hostile traffic comes from 127.0.0.2 and up so that pike does not count the legit peers on
127.0.0.1 together with it (PEERS.md §2).
"""

from __future__ import annotations

import asyncio
import time
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
from tests.helpers.rawsip import flood, sip_request
from tests.helpers.sipp import count_requests, sipp_stats

pytestmark = [pytest.mark.peer, needs_kamailio]

FOREIGN = "+491761234567"


def guarded_edge(*workers: int, **more: object) -> dict[str, object]:
    # worker_rate 100: pacing is tested in test_dispatch; here it must not interfere
    guarded = trunk_edge(*workers, maxload=50, rate=100, outbound_targets=["bob@127.0.0.1"])
    return {**guarded, **more}


def options_every(
    edge: tuple[str, int], source: str, seconds: float, interval: float
) -> tuple[int, int]:
    """A legit monitor pinging the edge; (sent, answered)."""
    sent = answered = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sent += 1
        reply = sip_request(edge, source=source, from_uri="sip:monitor@127.0.0.1")
        answered += reply is not None and reply.status == 200
        time.sleep(interval)
    return sent, answered


async def test_flood_is_banned_within_a_second_while_legit_traffic_goes_on(
    tmp_path: Path, worker_port: int, start: Starter, start_edge: EdgeFactory
) -> None:
    edge = await start_edge(**guarded_edge(worker_port, ban_seconds=60))
    address = (edge.settings.listen_host, edge.settings.listen_port)
    caller = await start(sipp_caller(tmp_path, address[1], NUMBER, calls=30, rate=10, hold_ms=200))
    replies, (sent, answered) = await asyncio.gather(
        asyncio.to_thread(flood, address, "127.0.0.2", 2.0, 300),
        asyncio.to_thread(options_every, address, "127.0.0.1", 2.0, 0.2),
    )
    assert await caller.wait(15) == 0, caller.output()
    # The flood got a few answers, then none: pike marked it and the ban drops everything.
    assert replies, "the flood was never answered: the edge was not reachable"
    time_to_ban = max(replies)
    print(f"flood 300/s from 127.0.0.2: {len(replies)} replies, banned after {time_to_ban:.3f} s")
    assert time_to_ban < 1.5  # "about 1 s": 0.13 s on a quiet machine, more when loaded
    assert await asyncio.to_thread(sip_request, address, source="127.0.0.2") is None
    assert "flood from 127.0.0.2" in edge.log_tail(200)
    # Legit: the trunk's 30 calls all went through and the monitor on 127.0.0.1 was answered.
    assert sipp_stats(tmp_path / "caller.csv")["SuccessfulCall(C)"] == 30
    assert answered == sent


async def test_scanner_user_agent_is_dropped_and_banned(
    tmp_path: Path, worker_port: int, start_edge: EdgeFactory
) -> None:
    edge = await start_edge(**guarded_edge(worker_port))
    address = (edge.settings.listen_host, edge.settings.listen_port)
    # A sipvicious-style probe: OPTIONS with the scanner's User-Agent. No answer at all.
    scan = await asyncio.to_thread(
        sip_request, address, source="127.0.0.3", user_agent="friendly-scanner"
    )
    assert scan is None
    # And the address stays banned, whatever it sends next.
    assert await asyncio.to_thread(sip_request, address, source="127.0.0.3") is None
    # Another address with an ordinary User-Agent is answered (the edge is up).
    other = await asyncio.to_thread(sip_request, address, source="127.0.0.4", user_agent="Zoiper")
    assert other is not None
    assert other.status == 200
    assert "scanner User-Agent from 127.0.0.3" in edge.log_tail(100)


async def test_toll_fraud_guard(tmp_path: Path, start: Starter, start_edge: EdgeFactory) -> None:
    worker, sender, bob = free_port(tcp=True), free_port(tcp=True), free_port(tcp=True)
    # ``sender`` is a worker's address from which a SIPp UAC places the workers' outbound
    # legs; ``bob`` is a listed outbound target (bob@127.0.0.1). Every target is loopback,
    # so a guard that failed would deliver to one of the counted stand-ins, not abroad.
    workers = [await start(sipp_worker(tmp_path, worker)), await start(sipp_worker(tmp_path, bob))]
    edge = await start_edge(**guarded_edge(worker, sender))
    host, port = edge.settings.listen_host, edge.settings.listen_port
    address = (host, port)

    async def invite(ruri: str, source: str, from_uri: str = "sip:x@192.0.2.7") -> int | None:
        reply = await asyncio.to_thread(
            sip_request, address, "INVITE", ruri, source=source, from_uri=from_uri
        )
        return reply.status if reply else None

    # Unauthenticated INVITE to an outside number, from an unknown address: 403, no relay.
    assert await invite(f"sip:{FOREIGN}@{host}:{port}", "127.0.0.5") == 403
    # Same with our own domain in From: challenged (407), still not relayed.
    assert await invite(f"sip:{FOREIGN}@{host}:{port}", "127.0.0.5", "sip:x@office") == 407
    # Even to a plan's own number, a non-trunk address without credentials gets nothing.
    assert await invite(f"sip:{NUMBER}@{host}:{port}", "127.0.0.5") == 403
    # From the trunk's address, a number that is not a plan's own number: 404.
    assert await invite(f"sip:{FOREIGN}@{host}:{port}", "127.0.0.1") == 404
    # A worker asking for a target nobody listed: 403.
    forbidden = await start(
        sipp_caller(tmp_path, port, FOREIGN, port=sender, name="w-out", domain=f"127.0.0.1:{bob}")
    )
    await forbidden.wait(10)
    # A worker calling a listed target (bob@127.0.0.1) is relayed there.
    allowed = await start(
        sipp_caller(tmp_path, port, "bob", port=sender, name="w-ok", domain=f"127.0.0.1:{bob}")
    )
    assert await allowed.wait(10) == 0, allowed.output()
    for process in workers:
        await process.stop()
    assert count_requests(tmp_path / f"worker-{worker}.msg", "INVITE") == 0
    assert count_requests(tmp_path / f"worker-{bob}.msg", "INVITE") == 1
    assert "403 Target not allowed" in (tmp_path / "w-out.err").read_text(errors="replace")
