"""The zygote: one process that imports everything a worker needs once, then forks workers.

``python -m switch.worker.forkserver --control-fd N [--dialplans PATH ...]``

Theory of operation
-------------------
A spawned worker (``python -m switch.worker``) pays for its own interpreter, its own
pydantic, holidays and phonenumbers, the worker modules, pjsua2's module and its own
compiled dial plans: ~60 MB RSS of which nearly all is the same in every worker. The zygote
imports those modules, compiles the plans (:class:`~switch.worker.plancache.PlanCache`),
moves every object into the collector's permanent generation (:func:`gc.freeze`, so that a
collection in a worker never writes to the shared pages) and waits. Each
:class:`~switch.control.forking.Fork` request from the supervisor
(:class:`switch.control.launcher.ForkServer`) carries the worker's command line and, as
SCM_RIGHTS, its control socket; the zygote forks, and the child runs
:func:`switch.worker.loop.main` with the preloaded plans, exactly as a spawned worker would.

pjlib's threads do not survive a fork, so the zygote never creates a pjsua2 Endpoint (it
only imports the module); each child creates its own after the fork. The zygote has one
thread and no timers: it sleeps in ``select`` until a request or a child's exit (SIGCHLD,
through :func:`signal.set_wakeup_fd`), reaps the child and reports
:class:`~switch.control.forking.Exited` with its status, which the supervisor's slot needs
to tell a crash from a recycle. When the supervisor's end closes the zygote exits; the
workers notice their own control channels close and drain, as before.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

# Imported for the children: what every worker would otherwise import itself.
import holidays  # noqa: F401
import phonenumbers  # noqa: F401
import pydantic  # noqa: F401

from rules import DialPlanSet
from switch.control import forking
from switch.errors import ControlProtocolError
from switch.worker import loop
from switch.worker.plancache import PlanCache

log = logging.getLogger("switch.worker.forkserver")

EXIT_CHILD_FAILED = 70  # the child raised before the worker's own main could report


class Zygote:
    """The request loop; forks on :class:`~switch.control.forking.Fork`."""

    def __init__(self, sock: socket.socket, plans: PlanCache) -> None:
        self._sock = sock
        self._plans = plans
        self._buffer = b""
        self._fds: list[int] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()

    def serve(self) -> int:
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in self._selector.select():
                if key.fileobj == self._wake_r:
                    self._drain_wakeups()
                    self._reap()
                elif not self._read():
                    return 0  # the supervisor is gone

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._send(forking.Exited(pid, os.waitstatus_to_exitcode(status)))

    def _send(self, message: forking.FromZygote) -> None:
        try:
            self._sock.sendall(forking.encode(message))
        except OSError as exc:
            log.warning("fork server: reply lost: %s", exc)

    def _read(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self._sock, 65536, 8)
        except OSError:
            return False
        self._fds.extend(fds)
        if not data:
            return False
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                self._handle(line)
        return True

    def _handle(self, line: bytes) -> None:
        try:
            message = forking.decode(line)
        except ControlProtocolError as exc:
            log.warning("%s", exc)
            return
        match message:
            case forking.Fork(id_, argv):
                fd = self._fds.pop(0) if self._fds else None
                self._fork(id_, argv, fd)
            case forking.Preloaded() | forking.Forked() | forking.ForkFailed() | forking.Exited():
                log.warning("fork server: %r is no request", message)
            case _:
                assert_never(message)

    def _fork(self, id_: int, argv: Sequence[str], fd: int | None) -> None:
        if fd is None:
            self._send(forking.ForkFailed(id_, "no control socket came with the request"))
            return
        try:
            args = loop.parse_args(argv)
        except SystemExit:  # argparse printed why
            os.close(fd)
            self._send(forking.ForkFailed(id_, f"bad worker command line {list(argv)!r}"))
            return
        plans = self._plans.load(list(args.dialplans))  # a changed plan is compiled here, once
        gc.collect()
        gc.freeze()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(fd)
            self._send(forking.ForkFailed(id_, str(exc)))
            return
        if pid == 0:  # pragma: no cover - runs in the child, measured by the pool tests
            self._become_worker(argv, fd, plans)
        os.close(fd)
        self._send(forking.Forked(id_, pid))

    def _become_worker(self, argv: Sequence[str], fd: int, plans: DialPlanSet | None) -> None:
        code = EXIT_CHILD_FAILED
        try:
            os.setsid()  # as start_new_session: a Ctrl-C in the terminal is the supervisor's
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._selector.close()
            self._sock.close()
            for other in (self._wake_r, self._wake_w, *self._fds):
                os.close(other)
            code = loop.main(_with_control_fd(argv, fd), plans=plans)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            # As python -m switch.worker: pjsua2's SWIG objects must not be collected after
            # libDestroy, and nothing of the zygote's may run again here.
            os._exit(code)


def _with_control_fd(argv: Sequence[str], fd: int) -> list[str]:
    """``argv`` with its ``--control-fd`` replaced by ``fd`` (added when it had none)."""
    out = list(argv)
    if "--control-fd" in out:
        out[out.index("--control-fd") + 1] = str(fd)
    else:
        out += ["--control-fd", str(fd)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m switch.worker.forkserver")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--dialplans", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    plans = PlanCache()
    loaded = plans.load(args.dialplans) if args.dialplans else None
    if threading.active_count() != 1:  # a thread would not survive the fork
        log.warning("fork server: %d threads before forking", threading.active_count())
    sock = socket.socket(fileno=args.control_fd)
    gc.collect()
    gc.freeze()
    zygote = Zygote(sock, plans)
    zygote._send(forking.Preloaded(os.getpid(), -1 if loaded is None else len(loaded)))
    return zygote.serve()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
