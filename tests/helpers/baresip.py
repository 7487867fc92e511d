"""A headless baresip phone (config per PEERS.md §1) and a tshark loopback capture.

baresip's ports: UDP and TCP at its SIP port, TLS one above, its ctrl_tcp port below the
ephemeral range (see :func:`tests.helpers.ports.free_port`), ten RTP ports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import stop_process

needs_baresip = pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip-core is needed")


def ctrl_request(command: str, params: str = "", token: str = "t") -> bytes:
    """One ctrl_tcp command as baresip reads it: a JSON netstring (PEERS.md §1)."""
    body = json.dumps({"command": command, "params": params, "token": token}).encode()
    return str(len(body)).encode() + b":" + body + b","


def contact_status(reply: str, name: str, uri: str) -> str | None:
    """The status (``Online``, ``Busy``, ...) the ``contacts`` ctrl reply shows for the
    contact ``name <uri>``; None when the reply is cut or does not list it."""
    _length, _, payload = reply.strip().partition(":")
    try:
        data = json.loads(payload.rstrip(","))["data"]
    except (ValueError, KeyError):
        return None
    plain = re.sub(r"\x1b\[[0-9;]*m", "", data)
    match = re.search(rf"(\w+) {re.escape(name)} <{re.escape(uri)}>", plain)
    return match.group(1) if match else None


class Baresip:
    """A headless baresip phone (config per PEERS.md §1) with a ctrl_tcp event reader."""

    def __init__(self, workdir: Path, name: str, user: str) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.user = user
        self.sip_port = free_port(tcp=True, span=2, even=True, low=True)  # UDP+TCP, TLS on +1
        self.ctrl_port = free_port(udp=False, tcp=True, low=True)
        self.rtp_base = free_port(span=10, even=True)
        (self.dir / "config").write_text(
            "\n".join(
                [
                    "poll_method\tepoll",
                    f"sip_listen\t{LOOPBACK}:{self.sip_port}",
                    "audio_source\tausine,440",
                    "audio_alert\tnone",
                    "audio_player\tnone",
                    "ausrc_srate\t48000",
                    "ausrc_channels\t2",
                    f"rtp_ports\t{self.rtp_base}-{self.rtp_base + 9}",
                    "rtcp_mux\tno",
                    "rtp_stats\tyes",
                    "jitter_buffer_delay\t0-20",
                    "module_path\t/usr/lib/baresip/modules",
                    "module\tg711.so",
                    "module\tausine.so",
                    "module_app\taccount.so",
                    "module_app\tmenu.so",
                    "module_app\tctrl_tcp.so",
                    f"ctrl_tcp_listen\t{LOOPBACK}:{self.ctrl_port}",
                    "",
                ]
            )
        )
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{LOOPBACK}:{self.sip_port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"
        )
        (self.dir / "contacts").write_text("")
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        self._ctrl: socket.socket | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{LOOPBACK}:{self.sip_port}"

    def start(self, *extra: str, listen: bool = True) -> Baresip:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(self.dir), "-n", LOOPBACK, *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if listen:
            deadline = time.monotonic() + 5
            while "baresip is ready" not in self.log.read_text(errors="replace"):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"baresip {self.name} did not start")
                time.sleep(0.05)
            while self._ctrl is None:
                try:
                    self._ctrl = socket.create_connection((LOOPBACK, self.ctrl_port), 0.2)
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"baresip {self.name}: no ctrl_tcp") from None
                    time.sleep(0.05)
            self._ctrl.settimeout(None)  # the connect timeout would end the reader
            threading.Thread(target=self._read_events, daemon=True).start()
        return self

    def _read_events(self) -> None:
        assert self._ctrl is not None
        buffer = b""
        while True:
            try:
                chunk = self._ctrl.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:  # netstrings: LEN:{json},
                size, rest = buffer.split(b":", 1)
                if len(rest) <= int(size):
                    break
                self.events.append(json.loads(rest[: int(size)]))
                buffer = rest[int(size) + 1 :]

    def event(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if event.get("type") == kind:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"baresip {self.name}: no {kind} event in {self.events}")

    def command(self, command: str, params: str = "") -> None:
        """One ctrl_tcp command (a JSON netstring, PEERS.md §1), e.g. ``transfer`` + a URI;
        its answer arrives among :attr:`events` (``"response": true``)."""
        assert self._ctrl is not None
        self._ctrl.sendall(ctrl_request(command, params, token=command))

    def packets(self) -> tuple[int, int]:
        """(transmitted, received) RTP packets from the stats block printed at hang-up."""
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("packets:"):
                tx, rx = line.split()[1:3]
                return int(tx), int(rx)
        raise AssertionError(f"baresip {self.name}: no packet stats in its log")

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
        if self.proc is not None:
            stop_process(self.proc)


class Tshark:
    """A loopback capture with a BPF filter, started before the call and read afterwards."""

    def __init__(self, workdir: Path, name: str, bpf: str) -> None:
        self.pcap = workdir / f"{name}.pcap"
        self.err = workdir / f"{name}.err"
        self.bpf = bpf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Tshark:
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                ["tshark", "-i", "lo", "-f", self.bpf, "-w", str(self.pcap)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while "Capture started" not in self.err.read_text(errors="replace"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"tshark did not start: {self.err.read_text()}")
            time.sleep(0.05)
        time.sleep(0.5)  # packets right after the message were still missed (seen here)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            time.sleep(0.3)  # let the last packets reach the file
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)

    def read(self, *args: str) -> str:
        return subprocess.run(
            ["tshark", "-r", str(self.pcap), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
