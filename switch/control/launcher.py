"""ForkServer: the supervisor's end of the zygote (:mod:`switch.worker.forkserver`).

:meth:`ForkServer.fork` hands the zygote a worker's command line and its control socket
(:mod:`switch.control.forking`) and returns a :class:`ForkedProcess`, which offers the part
of :class:`asyncio.subprocess.Process` a worker slot (:mod:`switch.control.pool`) uses:
``pid``, ``returncode``, ``wait()`` and ``send_signal()``. The worker is the zygote's
child, not ours: its exit status comes as the zygote's
:class:`~switch.control.forking.Exited` report. Should the zygote itself die, the workers
it forked go on; each is then watched through a pidfd (its status is lost:
:data:`STATUS_UNKNOWN`), and the next :meth:`fork` starts a new zygote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

from switch.control import forking
from switch.errors import ControlProtocolError, ForkServerError

log = logging.getLogger(__name__)

STATUS_UNKNOWN = 255
"""The return code of a worker that ended after its zygote (nobody saw its status)."""
START_TIMEOUT = 60.0  # imports and the dial plans; a 1,400-extension plan takes seconds
FORK_TIMEOUT = 10.0


class ForkedProcess:
    """A worker forked by the zygote, as far as a worker slot needs to know it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    def exited(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
            self._exited.set()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is not None:
            raise ProcessLookupError(self.pid)
        os.kill(self.pid, signum)


class ForkServer:
    """Start the zygote, fork workers from it, stop it. All on the event loop's thread."""

    def __init__(self, dialplans: Sequence[Path]) -> None:
        self.dialplans = tuple(dialplans)
        self._process: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 1
        self._preloaded: asyncio.Future[forking.Preloaded] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._lock = asyncio.Lock()
        self.forks = 0
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._sock is not None

    async def start(self) -> forking.Preloaded:
        """Start the zygote and wait until it has imported and compiled everything."""
        loop = asyncio.get_running_loop()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args = [sys.executable, "-m", "switch.worker.forkserver"]
        args += ["--control-fd", str(child.fileno())]
        if self.dialplans:
            args += ["--dialplans", *(str(p) for p in self.dialplans)]
        try:
            self._process = await asyncio.create_subprocess_exec(
                *args,
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # as the workers: Ctrl-C is the supervisor's
            )
        except OSError as exc:
            parent.close()
            raise ForkServerError(f"fork server did not start: {exc}") from None
        finally:
            child.close()
        parent.setblocking(False)
        self._sock, self._buffer = parent, b""
        self._preloaded = loop.create_future()
        loop.add_reader(parent.fileno(), self._on_readable)
        self.starts += 1
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._preloaded), START_TIMEOUT)
        except (TimeoutError, ForkServerError) as exc:
            await self.close()
            raise ForkServerError(f"fork server did not come up: {exc}") from None
        log.info("fork server ready (pid %d, %d tenants preloaded)", ready.pid, ready.tenants)
        return ready

    async def fork(self, argv: Sequence[str], control_fd: int) -> ForkedProcess:
        """A worker running ``python -m switch.worker`` with ``argv``, forked from the zygote;
        ``control_fd`` (the worker's end of its control socketpair) is passed to it."""
        async with self._lock:
            if self._sock is None:
                await self.start()
            sock = self._sock
            assert sock is not None
            id_, self._next_id = self._next_id, self._next_id + 1
            reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending[id_] = reply
            try:
                request = forking.encode(forking.Fork(id_, tuple(argv)))
                socket.send_fds(sock, [request], [control_fd])
            except OSError as exc:  # a full buffer is not expected: the zygote reads at once
                self._pending.pop(id_, None)
                raise ForkServerError(f"fork request not sent: {exc}") from None
            try:
                pid = await asyncio.wait_for(reply, FORK_TIMEOUT)
            except TimeoutError:
                raise ForkServerError("the fork server did not answer") from None
            finally:
                self._pending.pop(id_, None)
        child = self._children.get(pid)
        if child is None:
            child = self._children[pid] = ForkedProcess(pid)
        self.forks += 1
        return child

    async def close(self) -> None:
        """Stop the zygote (its workers are the pool's to stop)."""
        self._disconnect(ForkServerError("fork server closed"))
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    # -- the zygote's reports

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            log.error("fork server (pid %s) ended", self.pid)
            self._disconnect(ForkServerError("the fork server ended"))
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                self._dispatch(forking.decode(line))
            except ControlProtocolError as exc:
                log.error("%s", exc)

    def _dispatch(self, message: forking.Message) -> None:
        match message:
            case forking.Preloaded():
                if self._preloaded is not None and not self._preloaded.done():
                    self._preloaded.set_result(message)
            case forking.Forked(id_, pid):
                self._children.setdefault(pid, ForkedProcess(pid))
                future = self._pending.get(id_)
                if future is not None and not future.done():
                    future.set_result(pid)
            case forking.ForkFailed(id_, error):
                future = self._pending.get(id_)
                if future is not None and not future.done():
                    future.set_exception(ForkServerError(f"fork failed: {error}"))
            case forking.Exited(pid, returncode):
                child = self._children.pop(pid, None)
                if child is not None:
                    child.exited(returncode)
            case forking.Fork():
                log.error("fork server sent a fork request")
            case _:
                assert_never(message)

    def _disconnect(self, why: ForkServerError) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        sock.close()
        for future in [self._preloaded, *self._pending.values()]:
            if future is not None and not future.done():
                future.set_exception(why)
        if self._preloaded is not None and self._preloaded.done():
            self._preloaded.exception()  # retrieved: no "never retrieved" warning
        orphans, self._children = self._children, {}
        for child in orphans.values():
            _watch_orphan(loop, child)


def _watch_orphan(loop: asyncio.AbstractEventLoop, child: ForkedProcess) -> None:
    """Learn of the end of a worker whose zygote is gone, through a pidfd (Linux ≥ 5.3)."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except ProcessLookupError:
        child.exited(STATUS_UNKNOWN)
        return

    def ended() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        child.exited(STATUS_UNKNOWN)

    loop.add_reader(pidfd, ended)


__all__ = ["STATUS_UNKNOWN", "ForkServer", "ForkedProcess"]
