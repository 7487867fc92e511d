"""The systems under test, each started on loopback in front of a SIPp callee.

A target is a context manager that yields an :class:`Endpoint`: where the caller
sends its INVITEs, and which processes to watch (for crashes and memory). Rows:

- :func:`direct`: no hop, the caller talks to the callee (baseline 1).
- :func:`kamailio`: Kamailio 5.6 as a record-routing stateful proxy (baseline 2).
- :func:`worker`: one Rufweiche worker (pjsua2 B2BUA) with a one-rule dial plan.
- :func:`edge_pool`: the edge (``switch.edge``, Kamailio dispatcher) + a pool of workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sipp import BenchError, wait_sip_ready
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_process

REPO = Path(__file__).resolve().parent.parent


class TargetUnavailable(BenchError):
    """The target cannot run here (not built yet, binary missing)."""


@dataclass
class Endpoint:
    name: str
    host: str
    port: int
    procs: list[Any] = field(default_factory=list)  # each has .pid and .poll()
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
# Minimal stateful, record-routing proxy: the baseline a SIP hop costs{rtp_title}.
debug={debug}
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
{rtp_modules}modparam("tm", "fr_timer", 2000)
request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
		sl_send_reply("200", "OK");
		exit;
	}}
	if (has_totag()) {{
		if (loose_route() || is_method("ACK")) {{
{rtp_in_dialog}			t_relay();
		}}
		exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
	if (is_method("INVITE")) {{
		record_route();
{rtp_invite}	}}
	$du = "sip:127.0.0.1:{uas_port}";
	t_relay();
}}
{rtp_reply}"""

# rtpengine on every INVITE/reply/BYE, as the edge asks for it: "rtpengine alone".
RTP_MODULES = """loadmodule "textopsx.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{ng_port}")
"""
RTP_IN_DIALOG = """\t\t\tif (is_method("BYE")) rtpengine_delete();
\t\t\telse if (has_body("application/sdp")) rtpengine_manage("{flags}");
\t\t\tt_on_reply("MEDIA");
"""
RTP_INVITE = """\t\trtpengine_manage("{flags}");
\t\tt_on_reply("MEDIA");
"""
RTP_REPLY = """onreply_route[MEDIA] {{
	if (has_body("application/sdp")) rtpengine_manage("{flags}{reply_flags}");
}}
"""
RTP_FLAGS = "replace-origin replace-session-connection"


def kamailio_cfg(
    port: int, uas_port: int, ng_port: int | None = None, reply_flags: str = ""
) -> str:
    """The proxy's configuration; with ``ng_port`` it also asks that rtpengine to relay."""
    parts = {"rtp_title": "", "rtp_modules": "", "rtp_in_dialog": "", "rtp_invite": "",
             "rtp_reply": "", "debug": 0}  # fmt: skip
    if ng_port is not None:
        fill = {"ng_port": ng_port, "flags": RTP_FLAGS, "reply_flags": reply_flags}
        parts = {
            "rtp_title": ", with rtpengine (rtpengine alone)",
            "rtp_modules": RTP_MODULES.format(**fill),
            "rtp_in_dialog": RTP_IN_DIALOG.format(**fill),
            "rtp_invite": RTP_INVITE.format(**fill),
            "rtp_reply": RTP_REPLY.format(**fill),
            "debug": 1,
        }
    return KAMAILIO_CFG.format(port=port, uas_port=uas_port, **parts)


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
def kamailio_process(
    workdir: Path,
    uas_port: int,
    ng_port: int | None = None,
    reply_flags: str = "",
    shm_mb: int = 512,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Kamailio on a free port relaying to ``uas_port`` (see :func:`kamailio_cfg`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(kamailio_cfg(port, uas_port, ng_port, reply_flags))
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )
    if check.returncode != 0:
        raise BenchError(f"kamailio config {str(cfg)!r} rejected: {check.stderr[-500:]!r}")
    rundir = workdir / "run"
    rundir.mkdir(exist_ok=True)
    cmd = ["kamailio", "-DD", "-E", "-f", str(cfg), "-m", str(shm_mb), "-M", "8", "-Y", str(rundir)]
    log = (workdir / "kamailio.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_sip_ready("127.0.0.1", port, proc)
        yield port, proc
    finally:
        stop_process(proc, grace=5)
        log.close()


@contextlib.contextmanager
def kamailio(workdir: Path, uas_port: int) -> Iterator[Endpoint]:
    """Kamailio, ``-m 512`` (MB shared memory), 2 children, record_route, relaying to the UAS."""
    t0 = time.monotonic()
    with kamailio_process(workdir, uas_port) as (port, proc):
        yield Endpoint(
            "kamailio",
            "127.0.0.1",
            port,
            [proc],
            {
                "config": "stateful t_relay, record_route, children=2, -m 512",
                "ready_s": round(time.monotonic() - t0, 3),
            },
        )


@contextlib.contextmanager
def rtpengine(
    workdir: Path, port_count: int = 1000
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """rtpengine (userspace, as the edge starts it: switch/edge/rtpengine.py) on free ports;
    yields its ng port and process."""
    from bench.media_relay import ng
    from switch.edge.rtpengine import MediaRelaySettings, command_line, wants_realtime

    ng_port = free_port()
    base = max(1024, min(free_port(span=2, even=True), 65534 - port_count))
    settings = MediaRelaySettings(
        mode="on",
        ng_listen=f"127.0.0.1:{ng_port}",
        delete_delay=0,
        port_min=base,
        port_max=base + port_count - 2,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "rtpengine.log").open("wb")
    argv = command_line(settings, "127.0.0.1", None, realtime=wants_realtime(settings))
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        end = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                if b"pong" in ng(ng_port, {"command": "ping"}):
                    break
            if proc.poll() is not None or time.monotonic() > end:
                raise BenchError("rtpengine did not answer ng ping")
            time.sleep(0.1)
        yield ng_port, proc
    finally:
        stop_process(proc, grace=3)
        log.close()


@contextlib.contextmanager
def kamailio_rtpengine(
    workdir: Path, uas_port: int, reply_flags: str = "", port_count: int = 1000
) -> Iterator[tuple[int, list[int]]]:
    """ "rtpengine alone": Kamailio + rtpengine relaying to ``uas_port``; yields the SIP port
    and the pids (Kamailio's main process first, then rtpengine)."""
    with (
        rtpengine(workdir, port_count) as (ng_port, rtp),
        kamailio_process(workdir, uas_port, ng_port, reply_flags, shm_mb=256) as (port, kam),
    ):
        yield port, [kam.pid, rtp.pid]


# --- the Rufweiche worker ------------------------------------------------------------

WORKER_MODULE = "switch.worker"


def worker_available() -> bool:
    return (REPO / "switch" / "worker" / "loop.py").exists()


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


def _start_worker(
    workdir: Path, plans: Path, name: str, logs: contextlib.ExitStack
) -> tuple[subprocess.Popen[bytes], int, list[str]]:
    port = free_port()
    cmd = [sys.executable, "-m", WORKER_MODULE, "--sip", f"127.0.0.1:{port}"]
    cmd += ["--dialplans", str(plans), "--name", name]
    log = logs.enter_context((workdir / f"{name}.log").open("wb"))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    logs.callback(stop_process, proc, 5.0)  # runs before the log is closed
    return proc, port, cmd


@contextlib.contextmanager
def worker(workdir: Path, uas_port: int) -> Iterator[Endpoint]:
    """``python -m switch.worker --sip 127.0.0.1:PORT --dialplans DIR`` on a generated plan."""
    if not worker_available():
        raise TargetUnavailable("switch/worker/loop.py does not exist yet")
    workdir.mkdir(parents=True, exist_ok=True)
    plans = workdir / "dialplans"
    write_dialplan(plans, uas_port)
    with contextlib.ExitStack() as stack:
        proc, port, cmd = _start_worker(workdir, plans, "worker", stack)
        ready = wait_sip_ready("127.0.0.1", port, proc, timeout=30)
        time.sleep(0.5)  # let start-up work (plan load, media init) settle before measuring
        info: dict[str, object] = {"ready_s": ready, "cmd": cmd}
        yield Endpoint("worker", "127.0.0.1", port, [proc], info, BENCH_NUMBER)


class _AsyncProc:
    """Liveness of an asyncio child process, seen from another thread (Endpoint.procs)."""

    def __init__(self, proc: Any) -> None:
        self._proc = proc
        self.pid: int = proc.pid

    def poll(self) -> int | None:
        code: int | None = self._proc.returncode
        return code


EDGE_WORKERS = 8


def _close_stopped(loop: asyncio.AbstractEventLoop) -> None:
    """Close the edge's loop once its thread has stopped it (a loop still running after
    the join's timeout is left to the daemon thread: closing it would raise)."""
    if not loop.is_running():
        loop.close()


@contextlib.contextmanager
def edge_pool(workdir: Path, uas_port: int, workers: int = EDGE_WORKERS) -> Iterator[Endpoint]:
    """The edge (``switch.edge.Edge``: Kamailio, dispatcher alg 10) in front of N workers.

    The benchmark caller on 127.0.0.1 is a trunk (``trunk_sources``) calling the plan's
    number; pike is lifted above the rate ladder, every other edge setting is the
    default the edge ships with (``worker_rate`` pacing, ``maxload`` 2 per worker). The
    workers call the SIPp callee directly (no outbound route through the edge).
    """
    if not worker_available():
        raise TargetUnavailable("switch/worker/loop.py does not exist yet")
    try:
        from switch.edge import Edge, EdgeSettings
    except ImportError as exc:
        raise TargetUnavailable(f"switch.edge cannot be imported: {exc}") from None
    workdir.mkdir(parents=True, exist_ok=True)
    plans = workdir / "dialplans"
    write_dialplan(plans, uas_port)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="edge-loop", daemon=True)
    thread.start()
    with contextlib.ExitStack() as stack:
        # Unwound last to first: stop the loop, wait for its thread, close it (its
        # self-pipe and selector; an unclosed loop warns later, in some other test).
        stack.callback(_close_stopped, loop)
        stack.callback(thread.join, 10)
        stack.callback(loop.call_soon_threadsafe, loop.stop)
        started = [_start_worker(workdir, plans, f"w{i + 1}", stack) for i in range(workers)]
        for proc, port, _ in started:
            wait_sip_ready("127.0.0.1", port, proc, timeout=30)
        settings = EdgeSettings.model_validate(
            {
                "listen": f"127.0.0.1:{free_port()}",
                "db_path": workdir / "edge" / "edge.db",
                "run_dir": workdir / "edge",
                "workers": [
                    {"uri": f"sip:127.0.0.1:{port}", "maxload": 2} for _, port, _ in started
                ],
                "trunk_sources": ["127.0.0.1/32"],
                "public_numbers": [BENCH_NUMBER],
                "pike_density": 100_000,
                "log_level": 0,
            }
        )
        edge = Edge(settings)
        try:
            asyncio.run_coroutine_threadsafe(edge.start(), loop).result(timeout=60)
        except Exception as exc:
            raise BenchError(f"edge did not start: {exc}") from None
        stack.callback(
            lambda: asyncio.run_coroutine_threadsafe(edge.stop(), loop).result(timeout=30)
        )
        kam = edge._process  # the Kamailio child, for crash detection
        procs: list[Any] = [p for p, _, _ in started]
        if kam is not None:
            procs.insert(0, _AsyncProc(kam))
        time.sleep(2.5)  # dispatcher: first OPTIONS round marks the workers active
        yield Endpoint(
            "edge_pool",
            settings.listen_host,
            settings.listen_port,
            procs,
            {"workers": workers, "worker_rate": settings.worker_rate, "maxload": 2},
            BENCH_NUMBER,
        )


TARGETS: dict[str, TargetFactory] = {
    "direct": direct,
    "kamailio": kamailio,
    "worker": worker,
    "edge_pool": edge_pool,
    # Twice the workers (issue 16, rate): the edge paces each at worker_rate (10/s).
    "edge_pool16": functools.partial(edge_pool, workers=16),
    # The 150 calls/s at 100 ms calls needs ~45 call slots: 24 and 32 workers.
    "edge_pool24": functools.partial(edge_pool, workers=24),
    "edge_pool32": functools.partial(edge_pool, workers=32),
}
