"""SIP presence end to end: PresenceHub → PidfPublisher → Kamailio edge → SIPp watcher.

A SIPp UAC plays the assistant's softphone: it SUBSCRIBEs (RFC 3856, digest auth like a
phone) to ``sip:t.jan@office`` and answers every NOTIFY; the test reads the NOTIFY bodies
from SIPp's message trace and parses them with presence.pidf. Then a real softphone
(baresip 1.0, module presence) with jan in its contacts shows what the assistant sees.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from presence import pidf
from presence.hub import PresenceHub
from presence.sip import PidfPublisher
from rules.presence import PresenceState as S
from switch.edge import Edge
from switch.edge.credentials import add_user
from tests.helpers.baresip import contact_status, ctrl_request, needs_baresip
from tests.helpers.blf import notify_bodies, write_watcher
from tests.helpers.edge import edge_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import Process

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or shutil.which("sipp") is None,
        reason="kamailio and sipp (Debian kamailio, sip-tester) are needed",
    ),
]

JAN = ("t", "jan")
JAN_URI = "sip:t.jan@office"


def start_watcher(tmp: Path, edge_port: int, notifies: int, name: str) -> Process:
    scenario = write_watcher(tmp / f"{name}.xml", "t.jan@office", "alice@office", notifies)
    return Process(
        [
            "sipp",
            "-sf",
            str(scenario),
            f"127.0.0.1:{edge_port}",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port(tcp=True)),
            "-m",
            "1",
            *("-au", "alice", "-ap", "s3cret", "-auth_uri", "t.jan@office"),
            "-nostdin",
            "-timeout",
            "15",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            str(tmp / f"{name}.msg"),
            "-trace_err",
            "-error_file",
            str(tmp / f"{name}.err"),
        ],
        tmp / f"{name}.out",
        cwd=tmp,
    )


async def until(check: Callable[[], bool], what: str, seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", "s3cret", realm="office")
    running = Edge(edge_settings(tmp_path, secrets_file=secrets))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_a_subscribed_phone_sees_every_change(tmp_path: Path, edge: Edge) -> None:
    hub = PresenceHub({"t": {"jan", "anna"}})
    async with hub, PidfPublisher(hub, edge.rpc, domain="office") as publisher:
        await until(lambda: publisher.published(JAN), "first publish")
        watcher = await start_watcher(tmp_path, edge.settings.listen_port, 3, "watch").start()
        try:
            message_file = tmp_path / "watch.msg"
            await until(lambda: len(notify_bodies(message_file)) == 1, "initial NOTIFY")
            first = pidf.parse(notify_bodies(message_file)[0])
            assert (first.entity, first.basic, first.state) == (JAN_URI, "open", S.AVAILABLE)

            hub.set("t", "jan", S.AWAY, source="web", note="on site")
            await until(lambda: len(notify_bodies(message_file)) == 2, "NOTIFY for away")
            away = pidf.parse(notify_bodies(message_file)[1])
            assert (away.basic, away.activities, away.state) == ("open", ("away",), S.AWAY)
            assert away.note == "on site"

            hub.call_started("t", "jan")
            await until(lambda: len(notify_bodies(message_file)) == 3, "NOTIFY for the call")
            busy = pidf.parse(notify_bodies(message_file)[2])
            assert (busy.activities, busy.state) == (("on-the-phone",), S.BUSY)
            assert await watcher.wait(10) == 0, watcher.output()
        finally:
            await watcher.stop()
    assert publisher.failures == 0


async def test_an_edge_restart_is_noticed_and_everyone_published_again(
    tmp_path: Path, edge: Edge
) -> None:
    hub = PresenceHub({"t": {"jan"}})
    async with (
        hub,
        PidfPublisher(hub, edge.rpc, domain="office", probe_interval=0.2) as publisher,
    ):
        hub.set("t", "jan", S.DND, source="phone")
        await until(lambda: publisher.published(JAN), "first publish")
        await edge.stop()  # the edge forgets every document at start (forget_presence)
        await edge.start()
        await until(lambda: publisher.restarts_seen == 1, "restart noticed")
        await until(lambda: publisher.published(JAN), "publish after the restart")
        watcher = await start_watcher(tmp_path, edge.settings.listen_port, 1, "after").start()
        try:
            assert await watcher.wait(10) == 0, watcher.output()
        finally:
            await watcher.stop()
    (body,) = notify_bodies(tmp_path / "after.msg")
    doc = pidf.parse(body)
    # RFC 4480 "busy" is how do-not-disturb reads (presence/pidf.py).
    assert (doc.entity, doc.activities, doc.state) == (JAN_URI, ("busy",), S.DND)


async def test_the_rpc_listener_refuses_other_hosts(edge: Edge) -> None:
    url = f"http://{edge.settings.listen}/RPC"
    request = {"jsonrpc": "2.0", "id": 1, "method": "core.uptime"}
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url, json=request) as response,
    ):
        assert response.status == 403
    assert "up_since" in await edge.rpc("core.uptime")


def baresip_watcher(tmp: Path, edge_port: int, ctrl_port: int) -> Process:
    """baresip 1.0 as the assistant's phone: account alice at the edge (no REGISTER needed
    to watch), jan of tenant t in its contacts; ``presence.so`` SUBSCRIBEs to contacts."""
    home = tmp / "phone"
    home.mkdir()
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method\tepoll",
                f"sip_listen\t127.0.0.1:{free_port(tcp=True, span=2)}",  # TLS takes port + 1
                "audio_alert\tnone",
                "audio_player\tnone",
                "module_path\t/usr/lib/baresip/modules",
                "module_app\taccount.so",
                "module_app\tcontact.so",
                "module_app\tpresence.so",
                "module_app\tctrl_tcp.so",
                f"ctrl_tcp_listen\t127.0.0.1:{ctrl_port}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    (home / "accounts").write_text(
        f'<sip:alice@office>;auth_pass=s3cret;outbound="sip:127.0.0.1:{edge_port}";'
        "regint=0;pubint=0\n",
        encoding="utf-8",
    )
    (home / "contacts").write_text('"Jan" <sip:t.jan@office>;presence=p2p\n', encoding="utf-8")
    return Process(["baresip", "-f", str(home), "-n", "127.0.0.1"], tmp / "phone.log", cwd=tmp)


def baresip_status(ctrl_port: int) -> str | None:
    """Jan's status as baresip's contact list shows it (ctrl_tcp ``contacts``)."""

    try:
        with socket.create_connection(("127.0.0.1", ctrl_port), timeout=1) as sock:
            sock.sendall(ctrl_request("contacts"))
            buf = b""
            while b'"response":true' not in buf or not buf.endswith(b","):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        return None
    return contact_status(buf.decode(errors="replace"), "Jan", JAN_URI)


@needs_baresip
async def test_a_real_softphone_shows_the_craftsman(tmp_path: Path, edge: Edge) -> None:
    hub = PresenceHub({"t": {"jan"}})
    ctrl = free_port(tcp=True)
    phone = baresip_watcher(tmp_path, edge.settings.listen_port, ctrl)
    async with hub, PidfPublisher(hub, edge.rpc, domain="office") as publisher:
        await until(lambda: publisher.published(JAN), "first publish")
        await phone.start()
        try:
            shown: list[str | None] = []

            async def shows(status: str) -> None:
                async def check() -> bool:
                    shown.append(await asyncio.to_thread(baresip_status, ctrl))
                    return shown[-1] == status

                deadline = time.monotonic() + 8
                while not await check():
                    assert time.monotonic() < deadline, (status, shown[-5:], phone.output())
                    await asyncio.sleep(0.1)

            await shows("Online")
            hub.call_started("t", "jan")
            await shows("Busy")  # on-the-phone
            hub.call_ended("t", "jan")
            await shows("Online")
            hub.set("t", "jan", S.DND, source="phone")
            await shows("Busy")  # RPID busy
            # baresip 1.0 has no "away" of its own: it maps <rpid:away/> to closed.
            hub.set("t", "jan", S.AWAY, source="web")
            await shows("Offline")
            hub.set("t", "jan", S.AVAILABLE, source="web")
            await shows("Online")
        finally:
            await phone.stop()
    assert "changed status from" in phone.output()
