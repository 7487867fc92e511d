"""rtpengine (the media relay) as a child process of the switch, driven by the edge.

    settings = MediaRelaySettings(mode="on", ng_listen="127.0.0.1:2223")
    async with MediaRelay(settings, public="100.64.0.1") as relay:   # start, wait for ng ping
        ...                                                           # stop: SIGTERM, SIGKILL

Debian's ``rtpengine-daemon`` 10.5 in userspace (``--table=-1``, no kernel module;
PEERS.md). Two logical interfaces: ``int`` on 127.0.0.1 towards the workers and ``pub``
on the edge's address (``LOCAL!ADVERTISED`` behind a 1:1 NAT), so that a worker's
``c=IN IP4 127.0.0.1`` never leaves the host: Kamailio's ``rtpengine`` module asks for
``direction=int direction=pub`` (docs/edge.md "Media relay"). The ng protocol is bencode
over UDP with a cookie; :func:`ng_ping` speaks just enough of it to see the daemon live.

rtpengine's media threads run at real-time priority (``SCHED_RR``, ``realtime``) where the
host allows it: on a busy machine a packet then waits for no Python process, the
workers', the supervisor's or a load generator's (issue 16: +3–7 ms p99 over rtpengine
alone with 200 calls held, all of it rtpengine waiting for a core). Whether the host allows
it, :func:`realtime_allowed` asks the kernel itself (root in a container may lack
``CAP_SYS_NICE``, a user may have ``RLIMIT_RTPRIO``); where it does not, rtpengine runs at
normal priority and the log says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from switch.addresses import parse_host_port
from switch.edge.child import ChildProcess, log_tail, terminate
from switch.errors import MediaRelayError

INTERNAL = "127.0.0.1"
PORTS_PER_CALL = 8
"""rtpengine takes an RTP and an RTCP port for each side of a dialog it relays; a call
forwarded from a trunk to a phone that also leaves the host has two such dialogs."""

log = logging.getLogger("switch.edge")


class MediaRelaySettings(BaseModel):
    """The ``edge: media_relay:`` keys. ``auto``: on when the edge listens beyond loopback
    (media then leaves the host); ``on``: always; ``off``: never (media goes end to end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: Literal["auto", "on", "off"] = "auto"
    ng_listen: str = "127.0.0.1:2223"  # the control (ng) socket; loopback only
    # rtpengine's own default range: 10,000 ports, 1,250 calls (PORTS_PER_CALL).
    port_min: Annotated[int, Field(ge=1024, le=65535)] = 30000
    port_max: Annotated[int, Field(ge=1024, le=65535)] = 39999
    # Seconds rtpengine keeps a deleted call (0 in tests that set up many calls: DESIGN.md).
    delete_delay: Annotated[int, Field(ge=0, le=3600)] = 30
    timeout: Annotated[int, Field(ge=1, le=3600)] = 60  # no RTP this long: the call is dead
    # Media threads at SCHED_RR ``realtime_priority`` where the host allows it ("auto").
    realtime: Literal["auto", "off"] = "auto"
    realtime_priority: Annotated[int, Field(ge=1, le=99)] = 10
    binary: str = "rtpengine"

    @model_validator(mode="after")
    def _check(self) -> Self:
        host, port = parse_host_port(self.ng_listen)
        if not ipaddress.ip_address(host).is_loopback or port == 0:
            raise ValueError(f"ng_listen {self.ng_listen!r}: a loopback host:port (control)")
        if self.port_min > self.port_max:
            raise ValueError(f"port_min {self.port_min} is above port_max {self.port_max}")
        return self

    def calls(self) -> int:
        """How many calls the port range relays at once (:data:`PORTS_PER_CALL` each)."""
        return (self.port_max - self.port_min + 1) // PORTS_PER_CALL

    def enabled_for(self, listen_host: str) -> bool:
        if self.mode == "auto":
            return not ipaddress.ip_address(listen_host).is_loopback
        return self.mode == "on"


def interfaces(public: str, advertise: str | None = None) -> list[str]:
    """rtpengine's ``--interface`` values: ``int`` for the workers, ``pub`` for the rest.
    On a loopback edge both are the same address: then only ``pub`` (no directions)."""
    pub = f"pub/{public}" + (f"!{advertise}" if advertise else "")
    if public == INTERNAL:
        return [pub]
    return [f"int/{INTERNAL}", pub]


def realtime_allowed(priority: int) -> bool:
    """Whether a thread of this process may run at ``SCHED_RR`` ``priority``: tried on a
    short-lived thread of its own (``sched_setscheduler`` with pid 0 changes the calling
    thread only), so the kernel answers for capabilities, ``RLIMIT_RTPRIO`` and cgroups."""
    allowed: list[bool] = []

    def attempt() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
        except OSError:
            allowed.append(False)
        else:
            allowed.append(True)

    probe = threading.Thread(target=attempt, name="rt-probe", daemon=True)
    probe.start()
    probe.join()
    return allowed == [True]


def wants_realtime(settings: MediaRelaySettings) -> bool:
    """``realtime: auto`` and the host allows it (logged once when it does not)."""
    if settings.realtime == "off":
        return False
    if realtime_allowed(settings.realtime_priority):
        return True
    log.warning(
        "rtpengine runs at normal priority: this host allows no real-time threads"
        " (CAP_SYS_NICE or RLIMIT_RTPRIO; docs/operations.md)"
    )
    return False


def command_line(
    settings: MediaRelaySettings, public: str, advertise: str | None, *, realtime: bool = False
) -> list[str]:
    # --config-file=none: Debian's /etc/rtpengine/rtpengine.conf would add its CLI (2224)
    # and HTTP (2225) listeners, the kernel table 0 and interface "any".
    args = [
        settings.binary,
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--table=-1",
        "--no-fallback",
    ]
    args += [f"--interface={i}" for i in interfaces(public, advertise)]
    args += [
        f"--listen-ng={settings.ng_listen}",
        f"--port-min={settings.port_min}",
        f"--port-max={settings.port_max}",
        f"--delete-delay={settings.delete_delay}",
        f"--timeout={settings.timeout}",
        "--log-level=5",
    ]
    if realtime:  # the media (poller) threads; its idle threads keep normal priority
        args += ["--scheduling=rr", f"--priority={settings.realtime_priority}"]
    return args


def _bencode(value: dict[str, str]) -> bytes:
    out = b"d"
    for key in sorted(value):
        k, v = key.encode(), value[key].encode()
        out += b"%d:%s%d:%s" % (len(k), k, len(v), v)
    return out + b"e"


async def ng_ping(ng_listen: str, wait: float = 0.5) -> bool:
    """One ng ``ping``; True when rtpengine answers ``pong``."""
    host, port = parse_host_port(ng_listen)
    cookie = secrets.token_hex(4)
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Reply(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            if data.startswith(cookie.encode()) and not answer.done():
                answer.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Reply, remote_addr=(host, port))
    try:
        transport.sendto(cookie.encode() + b" " + _bencode({"command": "ping"}))
        async with asyncio.timeout(wait):
            return b"pong" in await answer
    except (TimeoutError, OSError):
        return False
    finally:
        transport.close()


class MediaRelay(ChildProcess):
    """rtpengine as a child: ``async with MediaRelay(settings, public=IP) as relay``."""

    def __init__(
        self,
        settings: MediaRelaySettings,
        *,
        public: str,
        advertise: str | None = None,
        log: Path,
        start_timeout: float = 5.0,
        stop_timeout: float = 3.0,
    ) -> None:
        self.settings = settings
        self.realtime = wants_realtime(settings)
        self.argv = command_line(settings, public, advertise, realtime=self.realtime)
        self.log = log
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log, lines)

    async def start(self) -> None:
        if self.running:
            raise MediaRelayError(f"rtpengine already running as pid {self.pid!r}")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        except OSError as exc:
            raise MediaRelayError(f"cannot start {self.argv[0]!r}: {exc.strerror}") from None
        finally:
            out.close()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                code = self._process.returncode
                self._process = None
                raise MediaRelayError(
                    f"rtpengine exited with {code!r} at start", log=self.log_tail()
                )
            if await ng_ping(self.settings.ng_listen, wait=0.2):
                return
        await self.stop()
        raise MediaRelayError(
            f"rtpengine gave no pong on {self.settings.ng_listen!r} within"
            f" {self._start_timeout!r} s",
            log=self.log_tail(),
        )

    async def watch(self, stopping: asyncio.Event, interval: float = 1.0) -> None:
        """Restart rtpengine whenever it dies, until ``stopping`` is set (the supervisor's
        TaskGroup runs this). Calls in flight lose their media; new ones get it again."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stopping.wait()
            if stopping.is_set() or self.running:
                continue
            self._process = None
            self.restarts += 1
            with contextlib.suppress(MediaRelayError):
                await self.start()

    async def stop(self) -> None:
        proc = self._process
        if proc is None:
            return
        await terminate(proc, self._stop_timeout)
        self._process = None
