"""Kamailio as a child process of the switch: :class:`Edge` (start, check, stop) and
:func:`kill_orphan` (a Kamailio left behind by a supervisor that was killed).

    async with Edge(settings) as edge:   # start(): render, check, spawn, wait for OPTIONS
        ...                              # stop(): SIGTERM, then SIGKILL after a timeout
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any

from switch.edge import rpc
from switch.edge.child import ChildProcess, log_tail, terminate
from switch.edge.config import EdgePaths, write_files
from switch.edge.database import forget_presence
from switch.edge.ping import options_ping
from switch.edge.settings import EdgeSettings
from switch.errors import EdgeConfigError, EdgeStartError


def kill_orphan(pid_file: Path, config: Path, wait: float = 5.0) -> bool:
    """Stop a Kamailio left running by a supervisor that was killed (SIGKILL gives it no
    chance to stop its edge): the pid file names it, and its command line must name our
    config, so a foreign process that reused the pid is never touched."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    if str(config).encode() not in cmdline:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    return True


class Edge(ChildProcess):
    """Kamailio as a child process. ``async with Edge(settings) as edge: ...``."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        kamailio: str = "kamailio",
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        rpc_timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.paths = EdgePaths.of(settings)
        self._kamailio = kamailio
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._rpc_timeout = rpc_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._rpc_ids = itertools.count(1)

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.paths.log, lines)

    def write_files(self) -> EdgePaths:
        return write_files(self.settings)

    async def check_config(self) -> None:
        """``kamailio -c -f CFG``: raises :class:`EdgeConfigError` with its output."""
        proc = await asyncio.create_subprocess_exec(
            self._kamailio,
            "-c",
            "-f",
            str(self.paths.config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            errors = [line for line in text.splitlines() if "ERROR" in line or "CRITICAL" in line]
            lines = text.strip().splitlines()
            first = errors[0] if errors else (lines[-1] if lines else "no output")
            raise EdgeConfigError(
                f"kamailio config {str(self.paths.config)!r} rejected: {first!r}", output=text
            )

    async def start(self) -> None:
        if self.running:
            raise EdgeStartError(f"edge already running as pid {self.pid!r}")
        await asyncio.to_thread(self.write_files)
        await asyncio.to_thread(forget_presence, self.paths.db)
        await self.check_config()
        await asyncio.to_thread(kill_orphan, self.paths.pid_file, self.paths.config)
        with contextlib.suppress(FileNotFoundError):
            self.paths.ctl_socket.unlink()
        log = self.paths.log.open("wb")
        try:
            # A new session: stop() can kill Kamailio's forked children by process group.
            self._process = await asyncio.create_subprocess_exec(
                self._kamailio,
                "-DD",
                "-E",
                "-f",
                str(self.paths.config),
                "-m",
                str(self.settings.shm_mb),
                "-M",
                str(self.settings.pkg_mb),
                "-Y",
                str(self.paths.run_dir),
                "-P",
                str(self.paths.pid_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def rpc(self, method: str, *params: str) -> Any:
        """Call a Kamailio RPC command (e.g. ``pua.publish``) and return its result
        (:func:`switch.edge.rpc.call`, bounded by ``rpc_timeout``; raises EdgeRpcError)."""
        return await rpc.call(
            self.settings.listen,
            method,
            *params,
            request_id=next(self._rpc_ids),
            within=self._rpc_timeout,
        )

    async def _wait_ready(self) -> None:
        host, port = self.settings.listen_host, self.settings.listen_port
        deadline = time.monotonic() + self._start_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise EdgeStartError(
                    f"kamailio exited with {self._process.returncode!r} at start",
                    log=self.log_tail(),
                )
            if await options_ping(host, port, wait=0.2) is not None:
                return
        raise EdgeStartError(
            f"kamailio gave no answer to OPTIONS on {self.settings.listen!r} within"
            f" {self._start_timeout!r} s",
            log=self.log_tail(),
        )

    async def stop(self) -> None:
        """SIGTERM to Kamailio; SIGKILL to its process group if it is not gone in time."""
        proc = self._process
        if proc is None:
            return
        await terminate(proc, self._stop_timeout)
        # Children left behind by a killed main process share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._process = None
