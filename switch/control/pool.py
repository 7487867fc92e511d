"""Worker processes as the supervisor sees them: spawn, talk, watch, restart.

Each worker is ``python -m switch.worker`` with one pjsua2 endpoint (at most four
call legs, see DESIGN.md), forked from the fork-server (:mod:`switch.control.launcher`,
issue 16) or, without one, spawned. The supervisor keeps a :class:`WorkerProcess` per
slot: it starts the process with one end of a ``socketpair`` as ``--control-fd``, reads
the worker's JSON lines (:mod:`switch.control.messages`) and hands each message to
``on_message``. When the process exits without being asked to, the slot restarts it
after a short back-off (well within the 5 s the operations guide promises) and
reports the death through ``on_exit`` so the calls it carried can be closed as
aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from switch.control import messages as control
from switch.control.launcher import ForkServer
from switch.errors import ControlProtocolError, ForkServerError

log = logging.getLogger(__name__)


class ChildProcess(Protocol):
    """What a slot needs of its process: :class:`asyncio.subprocess.Process` (spawned) or
    :class:`~switch.control.launcher.ForkedProcess` (forked by the zygote)."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    async def wait(self) -> int: ...
    def send_signal(self, signal: int) -> None: ...


MessageHandler = Callable[["WorkerProcess", control.FromWorker], Awaitable[None] | None]
ExitHandler = Callable[["WorkerProcess", int], Awaitable[None] | None]


@dataclass
class WorkerSpec:
    """What a worker slot is started with."""

    name: str
    sip: str  # host:port the worker listens on
    dialplans: Sequence[Path]
    routes: dict[str, str] = field(default_factory=dict)
    trunk: str | None = None
    grace_seconds: float = 10.0
    extra_args: Sequence[str] = ()

    def argv(self, control_fd: int) -> list[str]:
        """The command line of a spawned worker."""
        return [sys.executable, "-m", "switch.worker", *self.worker_args(control_fd)]

    def worker_args(self, control_fd: int) -> list[str]:
        """The worker's own arguments (after ``python -m switch.worker``), as the
        fork-server's children get them too."""
        args = ["--name", self.name, "--sip", self.sip]
        args += ["--dialplans", *(str(path) for path in self.dialplans)]
        for alias, target in sorted(self.routes.items()):
            args += ["--route", f"{alias}={target}"]
        if self.trunk:
            args += ["--trunk", self.trunk]
        args += ["--grace", str(self.grace_seconds), "--control-fd", str(control_fd)]
        return [*args, *self.extra_args]


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


class WorkerProcess:
    """One worker slot. ``run()`` keeps a process alive in it until ``stop()``."""

    RESTART_DELAY = 0.5  # seconds between a crash and the restart

    def __init__(
        self,
        spec: WorkerSpec,
        on_message: MessageHandler,
        on_exit: ExitHandler,
        launcher: ForkServer | None = None,
    ) -> None:
        self.spec = spec
        self.launcher = launcher
        """The fork-server to fork from (issue 16); None: spawn ``python -m switch.worker``."""
        self._on_message = on_message
        self._on_exit = on_exit
        self._writer: asyncio.StreamWriter | None = None
        self._process: ChildProcess | None = None
        self._stopping = False
        self._recycling = False
        self.ready = asyncio.Event()
        self.restarts = 0
        self.recycles = 0
        self.calls_handled = 0  # calls ended in the current process
        self.legs_in_use = 0
        self.capacity = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def recycling(self) -> bool:
        return self._recycling

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def send(self, message: control.ToWorker) -> bool:
        """Send a control message; False when the worker is not connected right now."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        try:
            writer.write(control.encode(message))
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def run(self) -> None:
        while not self._stopping:
            returncode = await self._run_once()
            self.calls_handled = 0
            if self._stopping:
                break
            if self._recycling and returncode == 0:
                self._recycling = False
                self.recycles += 1
                log.info("worker %s recycled", self.name)
                continue
            self._recycling = False
            self.restarts += 1
            log.error(
                "worker %s exited with %s; restarting in %.1f s",
                self.name,
                _describe_exit(returncode),
                self.RESTART_DELAY,
            )
            await asyncio.sleep(self.RESTART_DELAY)

    async def _run_once(self) -> int:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ready.clear()
        try:
            self._process = await self._start(child_sock.fileno())
        finally:
            child_sock.close()
        reader, self._writer = await asyncio.open_unix_connection(
            sock=parent_sock, limit=control.MAX_LINE + 1
        )
        log.info("worker %s started (pid %d) on %s", self.name, self._process.pid, self.spec.sip)
        reading = asyncio.create_task(self._read(reader))
        try:
            returncode = await self._process.wait()
        finally:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(reading, 1.0)
            reading.cancel()
            self._writer.close()
            self._writer = None
            self.ready.clear()
            self.legs_in_use = 0
        await _maybe_await(self._on_exit(self, returncode))
        return returncode

    async def _start(self, control_fd: int) -> ChildProcess:
        if self.launcher is not None:
            try:
                return await self.launcher.fork(self.spec.worker_args(control_fd), control_fd)
            except ForkServerError as exc:
                log.warning("worker %s: %s; spawning it instead", self.name, exc)
        return await asyncio.create_subprocess_exec(
            *self.spec.argv(control_fd),
            pass_fds=(control_fd,),
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal goes to the supervisor only
        )

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError) as exc:  # ValueError: line over the limit
                log.error("worker %s control channel broke: %s", self.name, exc)
                return
            if not line:
                return
            try:
                message = control.decode(line)
                if isinstance(message, control.ToWorker):
                    raise ControlProtocolError(f"{control.op_of(message)!r} is no worker report")
            except ControlProtocolError as exc:
                log.error("worker %s sent a bad control message: %s", self.name, exc)
                continue
            if isinstance(message, control.Ready):
                self.capacity = message.capacity
                self.ready.set()
            elif isinstance(message, control.Legs):
                self.legs_in_use = message.in_use
            try:
                await _maybe_await(self._on_message(self, message))
            except Exception:  # a bug in one handler must not stop the channel
                log.exception(
                    "handling %r from worker %s failed", control.op_of(message), self.name
                )

    async def recycle(self, grace: float) -> None:
        """Replace the process by a fresh one once its calls are done (pjsua2 keeps ~41 kB
        per call it ever carried, DESIGN.md): drain, stop within ``grace``, start again."""
        if self._recycling or self._stopping:
            return
        self._recycling = True
        log.info("worker %s: recycling after %d calls", self.name, self.calls_handled)
        if not await self.send(control.Stop(grace)):
            self._recycling = False

    async def stop(self, grace: float) -> None:
        """Drain and stop the worker; SIGKILL if it outlives ``grace`` + 5 s."""
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:
            return
        if not await self.send(control.Stop(grace)):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace + 5.0)
        except TimeoutError:
            log.error("worker %s did not stop in %.0f s; killing it", self.name, grace + 5.0)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"
