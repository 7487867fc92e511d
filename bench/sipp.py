"""Running SIPp 3.6 as caller and callee, and reading what it reports.

SIPp's own response times (``rtd``, ``-trace_rtt``) have a resolution of one
millisecond, too coarse for delays of a fraction of a millisecond, so the latency
figures come from wire timestamps (:mod:`bench.wire`); SIPp supplies the load and
the success/failure counts of its ``-trace_stat`` file.

Every process started here is bounded in calls and time, and stopped by pid. The command
lines, the statistics file and the ports come from the one SIPp wrapper of the tests,
:mod:`tests.helpers.sipp` (and :mod:`tests.helpers.ports`).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.ports import free_port
from tests.helpers.processes import PeerError, stop_process, wait_udp_bound
from tests.helpers.rawsip import options_ping
from tests.helpers.sipp import SippStats, parse_stat_csv, sipp_argv, sipp_version

__all__ = ["BenchError", "UacRun", "run_uac", "sipp_version", "uas", "wait_sip_ready"]

SCENARIOS = Path(__file__).parent / "scenarios"
UAC_XML = SCENARIOS / "uac.xml"
UAS_XML = SCENARIOS / "uas.xml"


class BenchError(RuntimeError):
    """A benchmark step that could not be carried out (not a measured failure)."""


def media_ports() -> int:
    """An even port P with P+1 and P+2 free (RTP + RTCP, and SIPp's media port + 2)."""
    return free_port(span=3, even=True)


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
    cmd = sipp_argv(
        scenario,
        port=port,
        media_port=media_port,
        keys={"sdp_port": str(sdp_port if sdp_port is not None else media_port)},
        timeout=lifetime,
        stat=workdir / f"{name}_stat.csv",
        stat_every_s=1,
        extra=extra,
    )
    log = (workdir / f"{name}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_udp_bound(port, proc)
        except PeerError as exc:
            raise BenchError(str(exc)) from None
        yield proc
    finally:
        stop_process(proc)
        log.close()


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
    media = media_ports()
    stat = workdir / f"{name}_stat.csv"
    stat.unlink(missing_ok=True)
    budget = calls / max(rate, 0.1) + hold_ms / 1000 + recv_timeout_ms / 1000 + extra_time
    rate_ms = 1000
    # Sub-1 rates and fractional rates: SIPp takes an integer count per period.
    if rate != int(rate):
        rate_ms, rate_count = 10_000, round(rate * 10)
    else:
        rate_count = int(rate)
    cmd = sipp_argv(
        UAC_XML,
        target=target,
        service=service,
        port=port,
        media_port=media,
        keys={"sdp_port": str(sdp_port if sdp_port is not None else media)},
        calls=calls,
        rate=rate_count,
        rate_period_ms=rate_ms,
        hold_ms=hold_ms,
        recv_timeout_ms=recv_timeout_ms,
        timeout=budget,
        timeout_error=True,
        stat=stat,
        stat_every_s=1,
    )
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
    try:
        stats = parse_stat_csv(stat) if stat.exists() else None
    except PeerError as exc:
        raise BenchError(str(exc)) from None
    return UacRun(calls, rate, hold_ms, rc, stats, elapsed)


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
