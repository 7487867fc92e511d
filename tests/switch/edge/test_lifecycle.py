"""Edge process lifecycle: start answers OPTIONS, stop never hangs and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest

from switch.edge import Edge, options_ping
from switch.errors import EdgeConfigError, EdgeStartError
from tests.helpers.edge import edge_settings, needs_kamailio
from tests.helpers.ports import free_port

pytestmark = [pytest.mark.peer, needs_kamailio]


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 5 is the process group; the command name (field 2) may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


async def gone(pgid: int, seconds: float = 2.0) -> bool:
    """True once no live process is left in the group (SIGKILL takes a moment to land)."""
    end = time.monotonic() + seconds
    while group_members(pgid):
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_start_answers_options_and_stop_leaves_no_process(tmp_path: Path) -> None:
    edge = Edge(edge_settings(tmp_path))
    async with edge:
        pid = edge.pid
        assert pid is not None
        for _ in range(50):  # main + children (the ones stop() must end); forks may lag
            if len(group_members(pid)) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(group_members(pid)) >= 3
        status = await options_ping(edge.settings.listen_host, edge.settings.listen_port)
        assert status == 200
        assert edge.paths.ctl_socket.exists()
    assert not edge.running
    assert await gone(pid)


async def test_stop_kills_a_kamailio_that_ignores_sigterm(tmp_path: Path) -> None:
    edge = Edge(edge_settings(tmp_path), stop_timeout=0.5)
    await edge.start()
    pid = edge.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
    began = time.monotonic()
    await edge.stop()
    assert time.monotonic() - began < 3
    assert await gone(pid)


async def test_start_fails_cleanly_when_the_port_is_taken(tmp_path: Path) -> None:
    settings = edge_settings(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((settings.listen_host, settings.listen_port))
        edge = Edge(settings, start_timeout=5)
        with pytest.raises(EdgeStartError, match=r"exited|no answer") as info:
            await edge.start()
    assert not edge.running
    assert "bind" in info.value.log.lower() or "address already in use" in info.value.log.lower()


TLS_MODULE = any(Path("/usr/lib").glob("*/kamailio/modules/tls.so"))


async def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "edge.pem", tmp_path / "edge.key"
    proc = await asyncio.create_subprocess_exec(
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", "/CN=edge", "-keyout", str(key), "-out", str(cert)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0
    return cert, key


@pytest.mark.skipif(not TLS_MODULE, reason="kamailio-tls-modules is not installed")
async def test_tls_listener_accepts_a_tls_connection(tmp_path: Path) -> None:
    cert, key = await self_signed(tmp_path)
    tls_port = free_port(tcp=True)
    edge = Edge(
        edge_settings(tmp_path, tls_listen=f"127.0.0.1:{tls_port}", tls_cert=cert, tls_key=key)
    )
    async with edge:
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        _, writer = await asyncio.open_connection("127.0.0.1", tls_port, ssl=context)
        try:
            assert writer.get_extra_info("peercert")["subject"] == ((("commonName", "edge"),),)
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()


@pytest.mark.skipif(TLS_MODULE, reason="kamailio-tls-modules is installed")
async def test_tls_without_the_module_is_a_config_error(tmp_path: Path) -> None:
    edge = Edge(
        edge_settings(
            tmp_path,
            tls_listen="127.0.0.1:5999",
            tls_cert=tmp_path / "c.pem",
            tls_key=tmp_path / "k.pem",
        )
    )
    edge.write_files()
    assert "listen=tls:127.0.0.1:5999" in edge.paths.config.read_text()
    with pytest.raises(EdgeConfigError, match="rejected"):
        await edge.check_config()
