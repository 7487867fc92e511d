"""Issue 14 at the edge, against real peers: sipvicious from a trusted address bans nobody
(item 6), every 503 of the edge carries Retry-After (item 4), a source whose answered calls
go unacknowledged gets only a few of them (item 3), malformed packets are counted and hardly
logged (item 7). Hostile sources are 127.0.0.2 and up (tests/switch/edge/test_guard.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from switch.edge import Edge
from switch.edge import stats as edge_stats
from tests.helpers.edge import NUMBER, SCENARIOS, EdgeFactory, Starter, needs_kamailio, trunk_edge
from tests.helpers.malformed import send_malformed
from tests.helpers.ports import free_port
from tests.helpers.processes import Process
from tests.helpers.rawsip import sip_request

pytestmark = [pytest.mark.peer, needs_kamailio]

needs_sipvicious = pytest.mark.skipif(
    shutil.which("svwar") is None or shutil.which("svmap") is None,
    reason="svwar and svmap (Debian sipvicious) are needed",
)


def sipvicious(tmp: Path, tool: str, *args: str) -> str:
    """Run svwar/svmap to its end (bounded); its output. HOME is ``tmp``: sipvicious keeps
    its session files under ~/.sipvicious."""
    env = {**os.environ, "HOME": str(tmp)}
    try:
        done = subprocess.run(
            [tool, *args], capture_output=True, text=True, timeout=30, env=env, cwd=tmp
        )
    except subprocess.TimeoutExpired as exc:
        return f"{tool} timed out: {exc.stdout!r}"
    return done.stdout + done.stderr


async def banned(edge: Edge, address: str) -> bool:
    dump = await edge.rpc("htable.dump", "ipban")
    return edge_stats.htable_counter(dump, address) != 0


@needs_sipvicious
async def test_sipvicious_from_trusted_addresses_bans_nobody_but_a_stranger_is_banned(
    tmp_path: Path, worker_port: int, start_edge: EdgeFactory
) -> None:
    edge = await start_edge(**trunk_edge(worker_port, maxload=50))
    host, port = edge.settings.listen_host, edge.settings.listen_port
    # svmap and svwar from 127.0.0.1: the edge's own address and the named trunk.
    out = await asyncio.to_thread(
        sipvicious,
        tmp_path,
        "svmap",
        "-b",
        "127.0.0.1",
        "-P",
        str(free_port(tcp=True)),
        "-p",
        str(port),
        host,
    )
    out += await asyncio.to_thread(
        sipvicious,
        tmp_path,
        "svwar",
        "--force",
        "-b",
        "127.0.0.1",
        "-P",
        str(free_port(tcp=True)),
        "-t",
        "0.05",
        "-e",
        "100-120",
        "-p",
        str(port),
        host,
    )
    log = edge.log_tail(300)
    assert "scanner User-Agent from trusted 127.0.0.1, not banned" in log, out + log
    assert not await banned(edge, "127.0.0.1")
    reply = await asyncio.to_thread(sip_request, (host, port), source="127.0.0.1")
    assert reply is not None, "the switch's own address was banned"
    assert reply.status == 200
    # svmap from a stranger: banned, silently. (Debian's svwar ignores -b and always sends
    # from the host's first address, so the stranger is svmap, which honours it.)
    await asyncio.to_thread(
        sipvicious,
        tmp_path,
        "svmap",
        "-b",
        "127.0.0.3",
        "-P",
        str(free_port(tcp=True, host="127.0.0.3")),
        "-p",
        str(port),
        host,
    )
    assert await banned(edge, "127.0.0.3")
    assert await asyncio.to_thread(sip_request, (host, port), source="127.0.0.3") is None
    assert "scanner User-Agent from 127.0.0.3, banned" in edge.log_tail(300)


async def test_every_503_of_the_edge_has_retry_after(
    tmp_path: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    # No worker answers at all: "every worker is full or down".
    edge = await start_edge(**trunk_edge(free_port(tcp=True), maxload=50))
    address = (edge.settings.listen_host, edge.settings.listen_port)
    ruri = f"sip:{NUMBER}@{address[0]}:{address[1]}"
    replies = [
        await asyncio.to_thread(sip_request, address, "INVITE", ruri, timeout=4.0) for _ in range(3)
    ]
    assert all(r is not None and r.status == 503 for r in replies), replies
    assert all(r is not None and "\r\nRetry-After: 5\r\n" in r.text for r in replies)


def no_ack_caller(tmp: Path, edge_port: int, calls: int, source: str) -> Process:
    """SIPp from ``source`` whose calls are answered and never acknowledged."""
    return Process(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / "caller_no_ack.xml"),
            f"127.0.0.1:{edge_port}",
            "-s",
            NUMBER,
            "-i",
            source,
            "-p",
            str(free_port(tcp=True, host=source)),
            "-m",
            str(calls),
            "-r",
            "20",
            "-nostdin",
            "-timeout",
            "8",
            "-trace_msg",
            "-message_file",
            str(tmp / "noack.msg"),
        ],
        tmp / "noack.out",
        cwd=tmp,
    )


async def test_unacknowledged_answered_calls_are_capped_per_source(
    tmp_path: Path, worker_port: int, start: Starter, start_edge: EdgeFactory
) -> None:
    edge = await start_edge(
        **trunk_edge(worker_port, maxload=8, trunk_sources=["127.0.0.1/32", "127.0.0.2/32"])
    )
    port = edge.settings.listen_port
    assert edge.settings.unacked_limit == 4  # half of the pool's 8 calls
    caller = await start(no_ack_caller(tmp_path, port, 8, "127.0.0.2"))
    await caller.wait(20)
    text = (tmp_path / "noack.msg").read_text(errors="replace")
    answered = text.count("SIP/2.0 200 OK")
    refused = text.count("SIP/2.0 503 Too many calls without ACK")
    print(f"8 INVITEs never acknowledged: {answered} answered, {refused} refused with 503")
    # Retransmitted 200s are counted once per call: the worker answered at most 4 calls.
    calls_answered = len({line for line in text.splitlines() if line.startswith("Call-ID:")})
    assert refused >= 4, text[-3000:]
    assert calls_answered >= 4
    assert "Retry-After: 5" in text
    # Another source is not limited by that one: its call from 127.0.0.1 goes through.
    reply = await asyncio.to_thread(
        sip_request,
        (edge.settings.listen_host, port),
        "INVITE",
        f"sip:{NUMBER}@127.0.0.1:{port}",
        timeout=3.0,
    )
    assert reply is not None
    assert reply.status == 200


async def test_malformed_packets_are_counted_and_hardly_logged(
    tmp_path: Path, worker_port: int, start_edge: EdgeFactory
) -> None:
    edge = await start_edge(**trunk_edge(worker_port, maxload=50), log_level=1)
    address = (edge.settings.listen_host, edge.settings.listen_port)
    await asyncio.sleep(0.5)
    before = edge.paths.log.stat().st_size
    # From the trusted trunk address (the case: a trusted source replaying PROTOS),
    # so that pike does not ban it half-way.
    sent = await asyncio.to_thread(send_malformed, address, 300, source="127.0.0.1")
    await asyncio.sleep(1.0)
    grown = edge.paths.log.stat().st_size - before
    counted = await edge_stats.malformed_total(edge.rpc)
    print(f"{sent} malformed INVITEs: log grew {grown} bytes, {counted} counted as malformed")
    assert grown < 50_000
    # Two of the five kinds fail the core's header parse, two fail sanity (400); the huge
    # Content-Type is valid SIP, the garbage Via is dropped before any count.
    assert counted >= 100, counted
    # Each log line is short: no packet content in the log.
    assert max(map(len, edge.paths.log.read_text(errors="replace").splitlines())) < 400
