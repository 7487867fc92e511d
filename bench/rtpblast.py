"""The C engine of the load generator's RTP (``bench/rtpblast.c``), driven from Python.

    blast = Blaster.start()              # builds the program once (cc), starts it
    blast.leg(7, FORWARD, sock, rtp=True)  # hands over a call side's socket (SCM_RIGHTS)
    blast.aim(7, ("127.0.0.1", 30000))   # where it sends; None: it stops
    blast.start_window(); ...; blast.stop_window()
    figures = blast.report()             # ways (counters, histogram), tick lateness
    blast.close()

bench/rtpload.py uses it with ``engine="c"``: the SIP dialogs stay in Python, the
packets (50,000 a second each way at 500 calls) go through one C loop. Where no C
compiler is found, :func:`available` says why and the generator keeps its Python loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("rtpblast.c")


def available() -> str | None:
    """None when the engine can be built here, else the reason."""
    if shutil.which("cc") is None:
        return "no C compiler (cc) on this machine"
    return None


def build() -> Path:
    """The program, built once per version of its source (in the temporary directory)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = Path(tempfile.gettempdir()) / f"rufweiche-rtpblast-{digest}"
    if not binary.exists():
        part = binary.with_suffix(f".{os.getpid()}.part")  # two benches building at once
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(part), str(SOURCE)], check=True)
        part.replace(binary)
    return binary


class Blaster:
    def __init__(self, proc: subprocess.Popen[bytes], ctl: socket.socket) -> None:
        self.proc, self.ctl = proc, ctl

    @classmethod
    def start(cls) -> Blaster:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = subprocess.Popen([str(build()), str(theirs.fileno())], pass_fds=[theirs.fileno()])
        theirs.close()
        return cls(proc, ours)

    def _say(self, text: str, fds: list[int] | None = None) -> None:
        if fds:
            socket.send_fds(self.ctl, [text.encode()], fds)
        else:
            self.ctl.send(text.encode())

    def leg(self, ident: int, direction: int, sock: socket.socket, rtp: bool) -> None:
        self._say(f"leg {ident} {direction} {int(rtp)}", [sock.fileno()])

    def aim(self, ident: int, dest: tuple[str, int] | None) -> None:
        self._say(f"dest {ident} {dest[0]} {dest[1]}" if dest else f"nodest {ident}")

    def drop(self, ident: int) -> None:
        self._say(f"drop {ident}")

    def start_window(self) -> None:
        self._say("start")

    def stop_window(self) -> None:
        self._say("stop")

    def report(self, timeout: float = 10.0) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "figures.json"
            self._say(f"report {path}")
            self.ctl.settimeout(timeout)
            answer = self.ctl.recv(64)
            self.ctl.settimeout(None)
            if answer != b"ok":
                raise RuntimeError(f"rtpblast could not write its figures: {answer!r}")
            figures: dict[str, Any] = json.loads(path.read_text())
            return figures

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._say("quit")
        self.ctl.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
