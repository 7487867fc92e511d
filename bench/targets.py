"""The systems under test, each started on loopback in front of a SIPp callee.

A target is a context manager that yields an :class:`Endpoint`: where the caller
sends its INVITEs, and which processes to watch (for crashes and memory). Rows:

- :func:`direct`: no hop, the caller talks to the callee (baseline 1).
- :func:`kamailio`: Kamailio 5.6 as a record-routing stateful proxy (baseline 2).
- :func:`worker`: one Rufweiche worker (pjsua2 B2BUA) with a one-rule dial plan.
- :func:`edge_pool`: hook for the edge (Kamailio dispatcher) + worker pool row; it
  raises :class:`TargetUnavailable` until ``switch/edge.py`` offers a way to start it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.sipp import BenchError, free_port, stop_process, wait_sip_ready

REPO = Path(__file__).resolve().parent.parent


class TargetUnavailable(BenchError):
    """The target cannot run here (not built yet, binary missing)."""


@dataclass
class Endpoint:
    name: str
    host: str
    port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    info: dict[str, object] = field(default_factory=dict)
    service: str = "uas"  # request-URI user the caller dials

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def exit_codes(self) -> list[int | None]:
        return [p.poll() for p in self.procs]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


TargetFactory = Callable[[Path, int], contextlib.AbstractContextManager[Endpoint]]


@contextlib.contextmanager
def direct(workdir: Path, uas_port: int) -> Iterator[Endpoint]:
    yield Endpoint("direct", "127.0.0.1", uas_port)


KAMAILIO_CFG = """#!KAMAILIO
# Minimal stateful, record-routing proxy: the baseline a SIP hop costs.
debug=0
log_stderror=yes
children=2
disable_tcp=yes
dns=no
rev_dns=no
auto_aliases=no
listen=udp:127.0.0.1:{port}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("tm", "fr_timer", 2000)
request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
		sl_send_reply("200", "OK");
		exit;
	}}
	if (has_totag()) {{
		if (loose_route() || is_method("ACK")) t_relay();
		exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
	if (is_method("INVITE")) record_route();
	$du = "sip:127.0.0.1:{uas_port}";
	t_relay();
}}
"""


def kamailio_version() -> str:
    try:
        out = subprocess.run(
            ["kamailio", "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except FileNotFoundError:
        return "missing"
    first = out.stdout.splitlines()[0] if out.stdout else ""
    return first.removeprefix("version:").strip().removeprefix("kamailio ") or "unknown"


@contextlib.contextmanager
def kamailio(workdir: Path, uas_port: int) -> Iterator[Endpoint]:
    """Kamailio, ``-m 512`` (MB shared memory), 2 children, record_route, relaying to the UAS."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port, uas_port=uas_port))
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )
    if check.returncode != 0:
        raise BenchError(f"kamailio config {str(cfg)!r} rejected: {check.stderr[-500:]!r}")
    rundir = workdir / "run"
    rundir.mkdir(exist_ok=True)
    cmd = ["kamailio", "-DD", "-E", "-f", str(cfg), "-m", "512", "-M", "8", "-Y", str(rundir)]
    log = (workdir / "kamailio.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_sip_ready("127.0.0.1", port, proc)
        yield Endpoint(
            "kamailio",
            "127.0.0.1",
            port,
            [proc],
            {"config": "stateful t_relay, record_route, children=2, -m 512", "ready_s": ready},
        )
    finally:
        stop_process(proc, grace=5)
        log.close()


# --- the Rufweiche worker ------------------------------------------------------------

WORKER_MODULE = "switch.worker"


def worker_available() -> bool:
    return (REPO / "switch" / "worker.py").exists()


def write_dialplan(directory: Path, uas_port: int, ring_seconds: int = 10) -> Path:
    """One tenant, one number, one rule: ring the SIPp callee for ``ring_seconds``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bench.yaml"
    path.write_text(DIALPLAN_TEMPLATE.format(uas_port=uas_port, ring=ring_seconds))
    return path


# The dial plan format belongs to rules/; keep this in step with it.
BENCH_NUMBER = "+493012345678"  # the called number: SIPp's request-URI user (-s)

DIALPLAN_TEMPLATE = """\
# Generated by bench/targets.py: one tenant, one number, one rule.
tenant: bench
name: Benchmark GmbH
numbers: ["+49 30 12345678"]
people:
  bob:
    devices: {{desk: "sip:uas@127.0.0.1:{uas_port}"}}
rules:
  - name: always ring bob
    then:
      - {{ring: [bob.desk], timeout: {ring}s}}
"""


@contextlib.contextmanager
def worker(workdir: Path, uas_port: int) -> Iterator[Endpoint]:
    """``python -m switch.worker --sip 127.0.0.1:PORT --dialplans DIR`` on a generated plan."""
    if not worker_available():
        raise TargetUnavailable("switch/worker.py does not exist yet")
    workdir.mkdir(parents=True, exist_ok=True)
    plans = workdir / "dialplans"
    write_dialplan(plans, uas_port)
    port = free_port()
    cmd = [sys.executable, "-m", WORKER_MODULE, "--sip", f"127.0.0.1:{port}"]
    cmd += ["--dialplans", str(plans)]
    log = (workdir / "worker.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_sip_ready("127.0.0.1", port, proc, timeout=30)
        time.sleep(0.5)  # let start-up work (plan load, media init) settle before measuring
        yield Endpoint(
            "worker", "127.0.0.1", port, [proc], {"ready_s": ready, "cmd": cmd}, BENCH_NUMBER
        )
    finally:
        stop_process(proc, grace=5)
        log.close()


@contextlib.contextmanager
def edge_pool(workdir: Path, uas_port: int) -> Iterator[Endpoint]:
    """Hook for the edge + worker pool row (issue 10, second part).

    To fill in (the harness needs nothing else; ``sipbench`` already runs this row
    when it is asked for and reports it beside Kamailio's, and the ≥ 300 calls/s
    target reads this row's rate search):

    1. start N workers like :func:`worker` (same generated plan from
       :func:`write_dialplan`, one free port each);
    2. build settings with ``switch.edge.settings_for_pool(edge=..., listen=...,
       workers=[...], data_dir=workdir)``; the benchmark caller sends from
       127.0.0.1, so ``edge`` must make it a trunk (``trunk_sources``), allow the
       plan's number (``public_numbers``) and the callee (``outbound_targets``),
       and lift pike (``pike_density``) above the highest rate of the ladder;
    3. run ``switch.edge.Edge`` (async) in a thread with its own event loop, or render
       the files with ``write_files`` and run Kamailio here like :func:`kamailio`;
    4. yield ``Endpoint("edge_pool", host, edge_port, procs=[kamailio, *workers],
       service=BENCH_NUMBER)`` so that a crash of any process is noticed.

    Use the worker ladder with higher rungs (up to ~400 calls/s) for this row.
    """
    raise TargetUnavailable("edge + pool row not wired yet (switch/edge.py)")
    yield Endpoint("edge_pool", "127.0.0.1", 0)  # pragma: no cover


TARGETS: dict[str, TargetFactory] = {
    "direct": direct,
    "kamailio": kamailio,
    "worker": worker,
    "edge_pool": edge_pool,
}
