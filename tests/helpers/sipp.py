"""THE SIPp wrapper of tests and bench: one argv builder, one process class, one stat reader.

:func:`sipp_argv` builds every SIPp command line (tests, edge stand-ins, bench). :class:`Sipp`
runs one scenario as a ``subprocess.Popen`` with its messages, logs and statistics in the
work directory; :func:`caller` and :func:`target` are the SIPp caller and callee of the
worker and switch tests (one call, a global timeout that fails the run). The asyncio
stand-ins of the edge tests are in :mod:`tests.helpers.edge`; bench's bounded load runs
in ``bench/sipp.py``, both on :func:`sipp_argv`.

Scenarios: a name with a dot is a file of ``tests/switch/sipp/`` (or a :class:`Path`), a
name without one a SIPp built-in (``-sn uas``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import REPO, PeerError, running, stop_process, wait_udp_bound

SIPP = "sipp"
SIPP_DIR = REPO / "tests" / "switch" / "sipp"
SIPP_SCENARIOS = REPO / "tests" / "switch" / "edge" / "scenarios"

# The business and caller the worker and switch tests call (dial plans in tests.helpers.worker).
BUSINESS = "+49 30 1234560"
BUSINESS_E164 = "+49301234560"
CALLER = "+491715550100"
# SIPp's own G.711 A-law sample: what a caller "says" into a voicemail.
PCAP = Path("/usr/share/sip-tester/g711a.pcap")


def scenario_args(scenario: str | Path) -> list[str]:
    if isinstance(scenario, Path):
        return ["-sf", str(scenario)]
    return ["-sf", str(SIPP_DIR / scenario)] if "." in scenario else ["-sn", scenario]


def sipp_argv(
    scenario: str | Path,
    *,
    port: int,
    target: str | None = None,
    service: str | None = None,
    media_port: int | None = None,
    keys: Mapping[str, str] | None = None,
    calls: int | None = None,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    hold_ms: int | None = None,
    recv_timeout_ms: int | None = None,
    timeout: float | None = None,
    timeout_error: bool = False,
    stat: Path | None = None,
    stat_every_s: int | None = None,
    messages: Path | None = None,
    logs: Path | None = None,
    errors: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """A SIPp command line on 127.0.0.1:``port``; each keyword adds its option.

    ``timeout`` is the global limit in seconds (``-timeout``); with ``timeout_error`` a run
    that reaches it exits non-zero. ``stat`` is the ``-trace_stat`` file, ``messages``
    the ``-trace_msg`` file, ``logs`` the ``-trace_logs`` file, ``errors`` ``-trace_err``.
    """
    argv = [SIPP, *scenario_args(scenario)]
    if target is not None:
        argv.append(target)
    if service is not None:
        argv += ["-s", service]
    argv += ["-i", LOOPBACK, "-p", str(port), "-mi", LOOPBACK]
    if media_port is not None:
        argv += ["-mp", str(media_port)]
    for key, text in (keys or {}).items():
        argv += ["-key", key, text]
    numbers: tuple[tuple[str, float | None], ...] = (
        ("-m", calls),
        ("-r", rate),
        ("-rp", rate_period_ms),
        ("-d", hold_ms),
        ("-recv_timeout", recv_timeout_ms),
    )
    for option, value in numbers:
        if value is not None:
            argv += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    if timeout is not None:
        argv += ["-timeout", f"{int(timeout)}s"]
    if timeout_error:
        argv.append("-timeout_error")
    argv.append("-nostdin")
    if messages is not None:
        argv += ["-trace_msg", "-message_file", str(messages)]
    if logs is not None:
        argv += ["-trace_logs", "-log_file", str(logs)]
    if stat is not None:
        argv += ["-trace_stat", "-stf", str(stat)]
    if stat_every_s is not None:
        argv += ["-fd", str(stat_every_s)]
    if errors is not None:
        argv += ["-trace_err", "-error_file", str(errors)]
    return [*argv, *extra]


def stage_pcap(workdir: Path) -> None:
    """The test audio (:data:`PCAP`) into ``workdir/pcap``, where the scenarios play it from."""
    (workdir / "pcap").mkdir(exist_ok=True)
    (workdir / "pcap" / PCAP.name).write_bytes(PCAP.read_bytes())


class Sipp:
    """One SIPp process running a scenario, its traces under ``workdir`` as ``name_*``."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        scenario: str | Path,
        args: Sequence[str] = (),
        *,
        port: int | None = None,
        media_port: int | None = None,
        **options: Any,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.port = port or free_port()
        self.media_port = media_port or free_port(span=2, even=True)
        self.messages = workdir / f"{name}_msgs.log"
        self.logs = workdir / f"{name}_logs.log"
        self.stat = workdir / f"{name}_stat.csv"
        self.cmd = sipp_argv(
            scenario,
            port=self.port,
            media_port=self.media_port,
            messages=self.messages,
            logs=self.logs,
            stat=self.stat,
            extra=args,
            **options,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = workdir / f"{name}.out"

    def start(self) -> Sipp:
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            raise AssertionError(f"sipp {self.name} still running after {timeout} s") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def wait_bound(self, timeout: float = 5.0) -> None:
        """Until SIPp has bound its SIP port (probing by trying to bind it ourselves)."""
        try:
            wait_udp_bound(self.port, timeout=timeout)
        except PeerError:
            raise AssertionError(f"sipp {self.name} did not bind UDP {self.port}") from None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def log_lines(self) -> list[str]:
        return self.logs.read_text(errors="replace").splitlines() if self.logs.exists() else []

    def message_text(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""

    def received(self, method_or_status: str) -> list[str]:
        """Every message SIPp received whose start line begins with ``method_or_status``."""
        blocks = self.message_text().split("----------------------------------------------")
        found = []
        for block in blocks:
            if "message received" not in block:
                continue
            body = block.split("\n", 2)[-1].lstrip()
            if body.startswith(method_or_status):
                found.append(body)
        return found

    def totals(self) -> dict[str, int]:
        """Cumulative successful and failed calls from the last line of the stat file."""
        stats = parse_stat_csv(self.stat)
        return {"ok": stats.successful, "failed": stats.failed}

    def diagnostics(self) -> str:
        parts = [f"--- {self.name}: {' '.join(self.cmd)}"]
        for path in (self.out, self.logs):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


def caller(
    workdir: Path,
    port: int,
    scenario: str | Path = "uac_call.xml",
    *extra: str,
    service: str = BUSINESS_E164,
    caller: str = CALLER,
    calls: int = 1,
    timeout: float = 20,
    timeout_error: bool = True,
    name: str = "caller",
    rtp_port: int | None = None,
    **options: Any,
) -> Sipp:
    """The SIPp caller: ``calls`` calls from ``caller`` to ``service`` at 127.0.0.1:``port``.

    ``rtp_port`` is where a listening scenario (``uac_*_listen.xml``) says it receives RTP
    (an :class:`tests.helpers.rtp.RtpSink`); ``options`` are more :func:`sipp_argv` keywords
    (``rate``, ``hold_ms``, ...).
    """
    keys = {"caller": caller} | ({"rtp_port": str(rtp_port)} if rtp_port is not None else {})
    return Sipp(
        workdir,
        name,
        scenario,
        extra,
        target=f"{LOOPBACK}:{port}",
        service=service,
        keys=keys,
        calls=calls,
        timeout=timeout,
        timeout_error=timeout_error,
        **options,
    )


def dial_code(
    workdir: Path, port: int, code: str, *, name: str, phone_port: int, who: str = "jan"
) -> Sipp:
    """``who``'s desk phone (From ``who``@127.0.0.1:``phone_port``) dials the feature
    ``code`` at 127.0.0.1:``port`` and takes the switch's BYE; the finished run."""
    phone = Sipp(
        workdir, name, "uac_wait_bye.xml", port=phone_port, target=f"{LOOPBACK}:{port}",
        service=code, keys={"caller": who}, calls=1, timeout=15, timeout_error=True,
    )  # fmt: skip
    with running(phone.start()):
        assert phone.wait(15) == 0, phone.diagnostics()
    return phone


def load(workdir: Path, port: int, calls: int, rate: float, hold_ms: int, scenario: str) -> Sipp:
    """``calls`` calls at ``rate``/s held ``hold_ms``; stats every second, no failing timeout."""
    return caller(
        workdir,
        port,
        scenario,
        name="load",
        calls=calls,
        rate=rate,
        hold_ms=hold_ms,
        timeout=60,
        timeout_error=False,
        stat_every_s=1,
        recv_timeout_ms=8000,
    )


def target(
    workdir: Path, name: str, scenario: str | Path, *extra: str, calls: int = 1, timeout: float = 20
) -> Sipp:
    """A SIPp callee (a person's device) that takes ``calls`` calls, then exits 0."""
    return Sipp(workdir, name, scenario, extra, calls=calls, timeout=timeout, timeout_error=True)


def start_bound(*peers: Sipp) -> None:
    """Start the peers, then wait until each has bound its port."""
    for peer in peers:
        peer.start()
    for peer in peers:
        peer.wait_bound()


def wait_all(*peers: Sipp, timeout: float = 20.0) -> None:
    """Every SIPp run ended with exit code 0 (every call as its scenario says)."""
    for peer in peers:
        rc = peer.wait(timeout)
        assert rc == 0, peer.diagnostics()


def sipp_version() -> str:
    out = subprocess.run([SIPP, "-v"], capture_output=True, text=True, timeout=10, check=False)
    for line in (out.stdout + out.stderr).splitlines():
        if "SIPp" in line:
            return line.strip()
    return "unknown"


# ----------------------------------------------------------------------- what SIPp reports


@dataclass(frozen=True)
class SippStats:
    """The last (cumulative) line of a SIPp ``-trace_stat`` file."""

    outgoing: int
    successful: int
    failed: int
    retransmissions: int
    current: int
    failed_reasons: dict[str, int] = field(default_factory=dict)


def stat_row(path: Path) -> dict[str, str]:
    """The last line of SIPp's ``;``-separated statistics file by column (timestamps hold tabs)."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        raise PeerError(f"SIPp statistics file {str(path)!r} has no data line")
    head = lines[0].rstrip(";").split(";")
    last = lines[-1].rstrip(";").split(";")
    return dict(zip(head, last, strict=False))


def sipp_stats(path: Path) -> dict[str, int]:
    """The integer columns of :func:`stat_row`: ``SuccessfulCall(C)``, ``FailedCall(C)``, ..."""
    return {k: int(v) for k, v in stat_row(path).items() if v.strip().isdigit()}


def parse_stat_csv(path: Path) -> SippStats:
    row = stat_row(path)

    def num(key: str) -> int:
        try:
            return int(float(row.get(key, "0") or 0))
        except ValueError:
            return 0

    reasons = {
        k.removeprefix("Failed").removesuffix("(C)"): num(k)
        for k in row
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


def count_requests(message_file: Path, method: str) -> int:
    """Requests of ``method`` that SIPp logged as received (-trace_msg)."""
    try:
        text = message_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    return len(re.findall(rf"^{method} sip:", text, flags=re.MULTILINE))
