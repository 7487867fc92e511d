"""Presence at the edge: the switch PUBLISHes PIDF, a phone SUBSCRIBEs and gets a NOTIFY.

The publisher is a SIPp UAC sending from a worker's address (the edge takes PUBLISH only
from workers); the watcher is a SIPp UAC that authenticates like a phone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from switch.edge import rpc
from tests.helpers.edge import PASSWORD, SCENARIOS, EdgeFactory, Starter, needs_kamailio
from tests.helpers.ports import free_port
from tests.helpers.processes import Process
from tests.helpers.rawsip import sip_request

pytestmark = [pytest.mark.peer, needs_kamailio]


def sipp_uac(
    tmp: Path, scenario: str, edge_port: int, port: int, name: str, *extra: str
) -> Process:
    return Process(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / scenario),
            f"127.0.0.1:{edge_port}",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "1",
            "-key",
            "presentity",
            "jan",
            "-key",
            "domain",
            "office",
            *extra,
            "-nostdin",
            "-timeout",
            "10",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(tmp / f"{name}.err"),
        ],
        tmp / f"{name}.out",
        cwd=tmp,
    )


async def test_published_pidf_reaches_a_subscribed_phone(
    tmp_path: Path, alice_secrets: Path, start: Starter, start_edge: EdgeFactory
) -> None:
    sender = free_port(tcp=True)
    edge = await start_edge(
        secrets_file=alice_secrets, workers=[{"uri": f"sip:127.0.0.1:{sender}", "maxload": 2}]
    )
    port = edge.settings.listen_port
    address = (edge.settings.listen_host, port)

    # Not from a worker and not one of ours: a forged PUBLISH is refused.
    forged = await asyncio.to_thread(
        sip_request,
        address,
        "PUBLISH",
        "sip:jan@office",
        source="127.0.0.6",
        extra="Event: presence",
    )
    assert forged is not None
    assert forged.status == 403

    publish = await start(sipp_uac(tmp_path, "publish.xml", port, sender, "publish"))
    assert await publish.wait(10) == 0, publish.output()
    watcher = await start(
        sipp_uac(
            tmp_path,
            "subscribe.xml",
            port,
            free_port(tcp=True),
            "subscribe",
            *("-key", "authuser", "alice", "-au", "alice", "-ap", PASSWORD),
            *("-auth_uri", "jan@office"),
        )
    )
    # rc 0 only if the NOTIFY body held the published note (ereg check_it in the scenario).
    assert await watcher.wait(10) == 0, watcher.output() + edge.log_tail(40)


async def test_the_switch_reaches_the_rpc_of_an_edge_on_another_loopback_address(
    start_edge: EdgeFactory,
) -> None:
    """The template answers JSON-RPC only from the edge's own address (``src_ip ==
    myself``); a connection to 127.0.0.2 came from 127.0.0.1, so every presence PUBLISH of
    a switch whose edge listened there got 403 (seen with docker/settings.yaml)."""
    edge = await start_edge(listen=f"127.0.0.2:{free_port(tcp=True)}")
    listen = f"{edge.settings.listen_host}:{edge.settings.listen_port}"
    version = await rpc.call(listen, "core.version")
    assert "kamailio" in str(version).lower()
    assert await _status_from_elsewhere(listen) == 403


async def _status_from_elsewhere(listen: str) -> int:
    """The HTTP status of the same request from another local address (still refused)."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "core.version"}
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.9", 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(f"http://{listen}/RPC", json=request) as response,
    ):
        return response.status
