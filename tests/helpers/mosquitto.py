"""A private Mosquitto broker for tests (PEERS.md §3), as a class and a context manager.

``with mosquitto_broker(tmp_path) as broker:`` starts a private broker on a free
loopback port (anonymous, ``persistence false``, log in ``tmp_path/mosquitto.log``)
and yields a :class:`MosquittoBroker` with ``host``/``port`` (``broker.address`` is
the ``(host, port)`` pair). It can be killed (``broker.kill()``, SIGKILL: clients
see their connection die) or stopped (``broker.stop()``, SIGTERM) and started again
on the *same* port (``broker.start()``) to test reconnects, or frozen
(``broker.freeze()``/``broker.thaw()``, SIGSTOP/SIGCONT) to play a hung broker whose
connections stay open. Without persistence the
restarted broker has no retained messages: whatever a subscriber finds was
published again. The process is always gone when the block exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import wait_for_tcp


def _wait_gone(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class MosquittoBroker:
    """One mosquitto process on a fixed loopback port; restartable on that port."""

    def __init__(self, workdir: Path, port: int | None = None, host: str = LOOPBACK) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            raise FileNotFoundError("mosquitto not installed (apt-get install mosquitto)")
        self.exe = exe
        self.host = host
        self.port = port or free_port(udp=False, tcp=True)
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.config.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 5.0) -> None:
        if self.running:
            return
        deadline = time.monotonic() + timeout
        while True:
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [self.exe, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
                )
            try:
                wait_for_tcp(self.host, self.port, timeout=min(2.0, timeout))
                return
            except TimeoutError:
                # The old socket of a just-killed broker can hold the port for a moment.
                if self.proc.poll() is None or time.monotonic() > deadline:
                    self._end(signal.SIGKILL)
                    raise
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the broker dies without closing anything politely."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the broker shuts down (it can take ~2 s, PEERS.md §3)."""
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            _wait_gone(proc, 5)

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its sockets open but answers nothing (a hung peer)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def mosquitto_broker(workdir: Path, port: int | None = None) -> Iterator[MosquittoBroker]:
    """A running private broker; killed (and waited for) when the block exits."""
    broker = MosquittoBroker(workdir, port)
    try:
        broker.start()
        yield broker
    finally:
        broker.kill()
