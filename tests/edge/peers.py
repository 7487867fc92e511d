"""Helpers for the edge tests: free ports, SIPp stand-ins, raw SIP over UDP.

Every process started here is stopped by pid (SIGTERM, then SIGKILL) by the fixture that
started it; nothing is left running after a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
# In CI the repo's parent holds shared/ (read-only test data).
SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (the edge listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError(f"no free port found on {host!r}")


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P such that P and P+1 are free (baresip takes TLS on P+1)."""
    for _ in range(50):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port pair found on {host!r}")


class Process:
    """A child process whose output goes to a file; ``stop()`` never hangs."""

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
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def sipp_worker(tmp: Path, port: int, scenario: str = "worker_uas.xml") -> Process:
    """A SIPp stand-in for a worker on 127.0.0.1:``port`` (answers OPTIONS pings)."""
    name = f"worker-{port}"
    return Process(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mp",
            str(free_port()),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(tmp / f"{name}.msg"),
        ],
        tmp / f"{name}.out",
        cwd=tmp,
    )


def sipp_caller(
    tmp: Path,
    edge_port: int,
    service: str,
    *,
    port: int | None = None,
    calls: int = 1,
    rate: float = 10,
    hold_ms: int = 100,
    domain: str | None = None,
    name: str = "caller",
) -> Process:
    """SIPp UAC calling ``service`` through the edge (trunk-style: no auth)."""
    argv = [
        "sipp",
        "-sf",
        str(SCENARIOS / "caller_uac.xml"),
        f"127.0.0.1:{edge_port}",
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        str(port or free_port()),
        "-mp",
        str(free_port()),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-d",
        str(hold_ms),
        "-key",
        "domain",
        domain or f"127.0.0.1:{edge_port}",
        "-nostdin",
        "-timeout",
        "20",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(tmp / f"{name}.csv"),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(tmp / f"{name}.err"),
    ]
    return Process(argv, tmp / f"{name}.out", cwd=tmp)


def count_requests(message_file: Path, method: str) -> int:
    """Requests of ``method`` that SIPp logged as received (-trace_msg)."""
    try:
        text = message_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    return len(re.findall(rf"^{method} sip:", text, flags=re.MULTILINE))


def sipp_stats(csv: Path) -> dict[str, int]:
    """The last row of a SIPp -trace_stat file: SuccessfulCall(C), FailedCall(C), ..."""
    rows = [r for r in csv.read_text(encoding="utf-8").splitlines() if r.strip()]
    head, last = rows[0].split(";"), rows[-1].split(";")
    return {k: int(v) for k, v in zip(head, last, strict=False) if v.strip().isdigit()}


@dataclass(frozen=True)
class Reply:
    status: int
    text: str


def sip_request(
    edge: tuple[str, int],
    method: str = "OPTIONS",
    ruri: str | None = None,
    *,
    source: str = "127.0.0.1",
    from_uri: str = "sip:probe@192.0.2.10",
    user_agent: str | None = None,
    extra: str = "",
    timeout: float = 0.5,
) -> Reply | None:
    """One request over UDP from ``source``; the final reply (or the first reply), or None."""
    host, port = edge
    ruri = ruri or f"sip:{host}:{port}"
    tag = secrets.token_hex(6)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        local = sock.getsockname()
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{tag};rport",
            "Max-Forwards: 70",
            f"From: <{from_uri}>;tag={tag}",
            f"To: <{ruri}>",
            f"Call-ID: {tag}@test",
            f"CSeq: 1 {method}",
            f"Contact: <sip:probe@{local[0]}:{local[1]}>",
        ]
        if user_agent is not None:
            lines.append(f"User-Agent: {user_agent}")
        if extra:
            lines.append(extra)
        lines += ["Content-Length: 0", "", ""]
        sock.sendto("\r\n".join(lines).encode(), (host, port))
        deadline = time.monotonic() + timeout
        first: Reply | None = None
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except TimeoutError:
                break
            text = data.decode(errors="replace")
            parts = text.split(" ", 2)
            if parts[0] != "SIP/2.0" or not parts[1].isdigit():
                continue
            reply = Reply(int(parts[1]), text)
            if reply.status >= 200:
                if method == "INVITE":
                    _ack(sock, (host, port), text, ruri, tag, local)
                return reply
            first = first or reply
        return first


def _ack(
    sock: socket.socket,
    edge: tuple[str, int],
    reply: str,
    ruri: str,
    tag: str,
    local: tuple[str, int],
) -> None:
    # RFC 3261 §17.1.1.3: the ACK of a non-2xx final response, same branch as the INVITE.
    headers = {
        line.split(":", 1)[0].strip().lower(): line for line in reply.split("\r\n")[1:] if line
    }
    to = headers.get("to", f"To: <{ruri}>")
    frm = headers.get("from", "")
    ack = "\r\n".join(
        [
            f"ACK {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{tag};rport",
            "Max-Forwards: 70",
            frm,
            to,
            f"Call-ID: {tag}@test",
            "CSeq: 1 ACK",
            "Content-Length: 0",
            "",
            "",
        ]
    )
    sock.sendto(ack.encode(), edge)
