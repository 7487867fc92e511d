"""Starting, waiting for and stopping peer processes; where the repository and shared/ are.

Every process a test starts is stopped by the fixture or ``with`` block that started it
(SIGTERM, then SIGKILL after a grace period), so a failing test leaves nothing behind.
:func:`stop_process` stops a ``subprocess.Popen`` (its whole process group when it was
started with ``start_new_session=True``); :class:`Process` is the asyncio counterpart with
its output in a file; :func:`running` stops any number of things with ``stop()`` on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from switch.edge.child import terminate
from tests.helpers.ports import LOOPBACK

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"  # the user guides that tests keep honest
PYTHON = sys.executable
# In CI the repo's parent holds shared/ (read-only test data); a clone without it skips.
SHARED = REPO.parent / "shared"


class PeerError(RuntimeError):
    """A peer process could not be started or did not come up (not a failed assertion)."""


def shared_dir() -> Path:
    """``shared/`` beside the repository, resolved."""
    return SHARED.resolve()


def stop_process(proc: subprocess.Popen[bytes], grace: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code.

    A process that leads its own process group (``start_new_session=True``) is stopped with
    its whole group, so that the children it started go too.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            _signal(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                _signal(proc, signal.SIGKILL)
            proc.wait(max(grace, 5.0))
    return proc.returncode


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        own_group = os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return
    if own_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)


class Stoppable(Protocol):
    def stop(self) -> object: ...


@contextlib.contextmanager
def running(*things: Stoppable) -> Iterator[None]:
    """Stop every process on the way out, whatever happened."""
    try:
        yield
    finally:
        for thing in things:
            thing.stop()


def wait_udp_bound(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 5.0
) -> None:
    """Until something holds 127.0.0.1:``port``/udp (we cannot bind it any more)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise PeerError(f"process {proc.args!r} exited with {proc.returncode} at start")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                return
        time.sleep(0.02)
    raise PeerError(f"nothing bound {LOOPBACK}:{port}/udp within {timeout} s")


def wait_for_tcp(host: str, port: int, timeout: float = 5.0) -> None:
    """Return once ``host:port`` accepts a TCP connection; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.02)


class Process:
    """An asyncio child process whose output goes to a file; ``stop()`` never hangs."""

    def __init__(self, argv: Sequence[str], log: Path, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.log = log
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Process:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=self.cwd,
            )
        return self

    async def wait(self, seconds: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(seconds):
            return await self.proc.wait()

    async def stop(self, grace: float = 3.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        await terminate(proc, grace, group=False)
        return proc.returncode

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def run_reporting(argv: Sequence[str], seconds: int) -> tuple[dict[str, Any], str]:
    """Run ``argv`` from the repository under ``timeout seconds`` (a program that reports
    one JSON object on its last line of output, e.g. inside ``unshare``); it must exit 0.
    Returns that object and what it wrote to stderr."""
    done = subprocess.run(
        ["timeout", str(seconds), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + 10,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1])), done.stderr


T = TypeVar("T")


def run_ok(
    cmd: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``cmd`` to its end and return its output; an AssertionError with the output (the
    end of stderr) when it exits with anything but 0."""
    done = subprocess.run(
        list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


def wait_alive(
    proc: subprocess.Popen[bytes] | None,
    check: Callable[[], T],
    timeout: float,
    what: str,
    output: Callable[[], str],
    every: float,
) -> T:
    """``check()`` every ``every`` seconds until it answers something true; that answer.
    An AssertionError with ``output()`` when ``proc`` exits first or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) waiting for {what}:\n{output()}")
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}:\n{output()}")


def poll_until(
    probe: Callable[[], T], done: Callable[[T], object], timeout: float, what: str, every: float
) -> T:
    """``probe()`` every ``every`` seconds until ``done`` of its value; that value. After
    ``timeout`` seconds an AssertionError names ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} expected within {timeout} s, last seen: {value!r}")
        time.sleep(every)


def thread_policies(pid: int) -> dict[str, set[tuple[int, int]]]:
    """Scheduling policy and priority of a process's threads, by thread name (``comm``);
    the main thread (tid == pid) is ``main``. Threads gone meanwhile are left out."""
    out: dict[str, set[tuple[int, int]]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            tid = int(task.name)
            name = "main" if tid == pid else (task / "comm").read_text().strip()
            policy = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
            out.setdefault(name, set()).add(policy)
    return out
