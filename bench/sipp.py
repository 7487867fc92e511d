"""Running SIPp 3.6 as caller and callee, and reading what it reports.

SIPp's own response times (``rtd``, ``-trace_rtt``) have a resolution of one
millisecond, too coarse for delays of a fraction of a millisecond, so the latency
figures come from wire timestamps (:mod:`bench.wire`); SIPp supplies the load and
the success/failure counts of its ``-trace_stat`` file.

Every process started here is bounded in calls and time, and stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
UAC_XML = SCENARIOS / "uac.xml"
UAS_XML = SCENARIOS / "uas.xml"
SIPP = "sipp"


class BenchError(RuntimeError):
    """A benchmark step that could not be carried out (not a measured failure)."""


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def free_port_pair(host: str = "127.0.0.1") -> int:
    """An even port whose successor is free too (RTP + RTCP, and SIPp's media port + 2)."""
    for _ in range(200):
        base = free_port(host=host) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c,
            ):
                a.bind((host, base))
                b.bind((host, base + 1))
                c.bind((host, base + 2))
                return base
        except OSError:
            continue
    raise BenchError("no free port pair found on 127.0.0.1")


def sipp_version() -> str:
    out = subprocess.run([SIPP, "-v"], capture_output=True, text=True, timeout=10, check=False)
    for line in (out.stdout + out.stderr).splitlines():
        if "SIPp" in line:
            return line.strip()
    return "unknown"


def stop_process(proc: subprocess.Popen[bytes], grace: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=grace)
    return proc.returncode


@dataclass(frozen=True)
class SippStats:
    """The last (cumulative) line of a SIPp ``-trace_stat`` file."""

    outgoing: int
    successful: int
    failed: int
    retransmissions: int
    current: int
    failed_reasons: dict[str, int] = field(default_factory=dict)


def parse_stat_csv(path: Path) -> SippStats:
    """Read SIPp's ``;``-separated statistics file (its timestamps contain tabs)."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        raise BenchError(f"SIPp statistics file {str(path)!r} has no data line")
    head = lines[0].rstrip(";").split(";")
    last = lines[-1].rstrip(";").split(";")
    row = dict(zip(head, last, strict=False))

    def num(key: str) -> int:
        try:
            return int(float(row.get(key, "0") or 0))
        except ValueError:
            return 0

    reasons = {
        k.removeprefix("Failed").removesuffix("(C)"): num(k)
        for k in head
        if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and num(k)
    }
    return SippStats(
        outgoing=num("OutgoingCall(C)"),
        successful=num("SuccessfulCall(C)"),
        failed=num("FailedCall(C)"),
        retransmissions=num("Retransmissions(C)"),
        current=num("CurrentCall"),
        failed_reasons=reasons,
    )


@dataclass(frozen=True)
class UacRun:
    calls: int
    rate: float
    hold_ms: int
    rc: int | None  # None: killed after its time limit
    stats: SippStats | None
    elapsed: float  # wall-clock seconds of the SIPp run

    @property
    def ok(self) -> bool:
        """Every call placed and completed, none failed."""
        return (
            self.rc == 0
            and self.stats is not None
            and self.stats.failed == 0
            and self.stats.successful >= self.calls
        )

    def as_dict(self) -> dict[str, object]:
        s = self.stats
        return {
            "calls": self.calls,
            "rate": self.rate,
            "hold_ms": self.hold_ms,
            "rc": self.rc,
            "elapsed_s": round(self.elapsed, 3),
            "successful": s.successful if s else None,
            "failed": s.failed if s else None,
            "retransmissions": s.retransmissions if s else None,
            "failed_reasons": s.failed_reasons if s else None,
            "ok": self.ok,
        }


@contextlib.contextmanager
def uas(
    workdir: Path,
    *,
    port: int,
    media_port: int,
    sdp_port: int | None = None,
    name: str = "uas",
    lifetime: float = 900.0,
    scenario: Path = UAS_XML,
    extra: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """A SIPp callee on 127.0.0.1:``port`` (RR-echoing scenario), stopped on exit.

    No ``-cp``: SIPp then tries control ports from 8888 upwards until one is free.

    ``media_port`` is the port SIPp binds for media (it binds it even without
    ``-rtp_echo``); ``sdp_port`` is what the 200 OK advertises, by default the same.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(media_port),
        "-key", "sdp_port", str(sdp_port if sdp_port is not None else media_port),
        "-timeout", f"{int(lifetime)}s", "-nostdin",
        "-trace_stat", "-stf", str(workdir / f"{name}_stat.csv"), "-fd", "1", *extra,
    ]  # fmt: skip
    log = (workdir / f"{name}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_udp_bound(port, proc)
        yield proc
    finally:
        stop_process(proc)
        log.close()


def wait_udp_bound(port: int, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Until something holds 127.0.0.1:``port``/udp (we cannot bind it any more)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise BenchError(f"process {proc.args!r} exited with {proc.returncode} at start")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise BenchError(f"nothing bound 127.0.0.1:{port} within {timeout} s")


def _bind_failed(log: Path) -> bool:
    """SIPp could not bind one of its ports (another process took it since we picked it)."""
    try:
        text = log.read_bytes()
    except OSError:
        return False
    return b"Unable to bind" in text or b"Address already in use" in text


def run_uac(
    workdir: Path,
    *,
    target: str,
    port: int,
    calls: int,
    rate: float,
    hold_ms: int = 100,
    service: str = "uas",
    sdp_port: int | None = None,
    name: str = "uac",
    recv_timeout_ms: int = 3000,
    extra_time: float = 10.0,
) -> UacRun:
    """Place ``calls`` calls at ``rate`` per second from 127.0.0.1:``port`` to ``target``.

    Bounded: each call fails after ``recv_timeout_ms`` without an expected message, the
    whole run after the time the calls need plus ``extra_time`` seconds. A run that
    placed no call because a port was taken in the meantime is repeated on fresh ports
    (``port`` included; pass 0 to let it be picked here).
    """
    for attempt in range(4):
        run = _run_uac_once(
            workdir, target=target, port=port or free_port(), calls=calls, rate=rate,
            hold_ms=hold_ms, service=service, sdp_port=sdp_port, name=name,
            recv_timeout_ms=recv_timeout_ms, extra_time=extra_time,
        )  # fmt: skip
        placed = run.stats.outgoing if run.stats else 0
        if placed or not _bind_failed(workdir / f"{name}.log") or attempt == 3:
            return run
        port = 0
    return run


def _run_uac_once(
    workdir: Path,
    *,
    target: str,
    port: int,
    calls: int,
    rate: float,
    hold_ms: int,
    service: str,
    sdp_port: int | None,
    name: str,
    recv_timeout_ms: int,
    extra_time: float,
) -> UacRun:
    workdir.mkdir(parents=True, exist_ok=True)
    media = free_port_pair()
    stat = workdir / f"{name}_stat.csv"
    stat.unlink(missing_ok=True)
    budget = calls / max(rate, 0.1) + hold_ms / 1000 + recv_timeout_ms / 1000 + extra_time
    rate_ms = 1000
    # Sub-1 rates and fractional rates: SIPp takes an integer count per period.
    if rate != int(rate):
        rate_ms, rate_count = 10_000, round(rate * 10)
    else:
        rate_count = int(rate)
    cmd = [
        SIPP, target, "-sf", str(UAC_XML), "-s", service,
        "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-mp", str(media),
        "-key", "sdp_port", str(sdp_port if sdp_port is not None else media),
        "-m", str(calls), "-r", str(rate_count), "-rp", str(rate_ms), "-d", str(hold_ms),
        "-recv_timeout", str(recv_timeout_ms), "-timeout", f"{int(budget)}s", "-timeout_error",
        "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1",
    ]  # fmt: skip
    t0 = time.monotonic()
    with (workdir / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        rc: int | None = None
        try:
            rc = proc.wait(timeout=budget + 5)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            if proc.poll() is None:  # timed out, or we were interrupted: never leave it behind
                stop_process(proc)
    elapsed = time.monotonic() - t0
    stats = parse_stat_csv(stat) if stat.exists() else None
    return UacRun(calls, rate, hold_ms, rc, stats, elapsed)


def options_ping(host: str, port: int, timeout: float = 0.3) -> bool:
    """True if ``host:port`` answers an OPTIONS request with any SIP response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        branch = f"z9hG4bK-ping-{os.getpid()}-{time.monotonic_ns()}"
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
            f"From: <sip:bench@127.0.0.1:{lport}>;tag={branch[-8:]}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {branch}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        s.settimeout(timeout)
        s.sendto(msg.encode(), (host, port))
        try:
            data = s.recv(65535)
        except OSError:
            return False
        return data.startswith(b"SIP/2.0 ")


def wait_sip_ready(
    host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0
) -> float:
    """Seconds until ``host:port`` answers OPTIONS; raises if ``proc`` dies or time runs out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise BenchError(f"process {proc.args!r} exited with {proc.returncode} at start")
        if options_ping(host, port):
            return time.monotonic() - t0
        time.sleep(0.1)
    raise BenchError(f"{host}:{port} did not answer OPTIONS within {timeout} s")
