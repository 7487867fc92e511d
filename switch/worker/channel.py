"""ControlChannel: the worker's end of the control channel, off the SIP thread.

Two small threads: a reader that queues decoded messages (:mod:`switch.control.messages`)
for the loop, and a writer that encodes and sends what the loop queued, so the SIP hot path
never blocks on the socket nor pays for encoding a call record.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable

from switch.control import messages as control
from switch.errors import ControlProtocolError

log = logging.getLogger("switch.worker")


class ControlChannel:
    """Newline-delimited JSON to and from the supervisor; standalone without a socket."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock
        self.inbox: queue.SimpleQueue[control.ToWorker] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[control.FromWorker | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self.closed = threading.Event()
        self.wake: Callable[[], None] = lambda: None
        """Called (on the reader thread) after messages were queued or the channel closed:
        the loop's endpoint wait ends then, not at its timeout (switch/worker/loop.py)."""

    @classmethod
    def from_fd(cls, fd: int | None) -> ControlChannel:
        if fd is None:
            return cls(None)
        return cls(socket.socket(fileno=fd))

    def start(self) -> None:
        if self._sock is None:
            return
        for target, name in ((self._read, "control-reader"), (self._write, "control-writer")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def send(self, message: control.FromWorker) -> None:
        """Queue a message; the writer thread encodes it (a record costs ~0.3 ms)."""
        if self._sock is None:
            log.debug("control (standalone): %s", control.op_of(message))
            return
        self._outbox.put(message)

    def close(self, timeout: float = 2.0) -> None:
        if self._sock is None:
            return
        self._outbox.put(None)
        for thread in self._threads:
            if thread.name == "control-writer":
                thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def _read(self) -> None:
        assert self._sock is not None
        buffer = b""
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                queued = False
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        message = control.decode(line)
                        if not isinstance(message, control.ToWorker):
                            raise ControlProtocolError(
                                f"{control.op_of(message)!r} is no supervisor request"
                            )
                        self.inbox.put(message)
                        queued = True
                    except ControlProtocolError as exc:
                        log.warning("control: %s", exc)
                if queued:
                    self.wake()
                if len(buffer) > control.MAX_LINE:
                    log.warning("control: line over %d bytes dropped", control.MAX_LINE)
                    buffer = b""
        except OSError:
            pass
        self.closed.set()
        self.wake()

    def _write(self) -> None:
        assert self._sock is not None
        while True:
            message = self._outbox.get()
            if message is None:
                return
            try:
                self._sock.sendall(control.encode(message))
            except OSError:
                self.closed.set()
                return


__all__ = ["ControlChannel"]
