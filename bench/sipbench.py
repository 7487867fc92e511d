"""Side-by-side SIP benchmark: Rufweiche against baselines measured in the same run.

``python -m bench.sipbench [--quick] [--rows direct,kamailio,worker] [--out DIR]``

Rows (see :mod:`bench.targets`): SIPp caller → (nothing | Kamailio | one worker |
edge + pool) → SIPp callee, all on 127.0.0.1. For each row:

1. latency: a fixed moderate rate, short calls; INVITE→180 and INVITE→200 at the
   caller and INVITE in → INVITE out at the callee, from wire timestamps
   (:mod:`bench.wire`), p50/p99;
2. rate search: the highest calls/second with zero failed calls, stepwise, every
   step bounded in calls and seconds; a dead target ends the search (and is noted);
3. media (direct and worker rows): one-way audio delay and loss (:mod:`bench.media`);
4. memory (worker row): RSS idle and after batches of calls, growth per call.

Results: ``bench/results/sipbench-<UTC time>.json`` (raw figures, machine info) and a
Markdown table printed and written to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import media, sipp, wire
from bench.sipp import BenchError
from bench.targets import TARGETS, Endpoint, TargetFactory, TargetUnavailable, kamailio_version
from tests.helpers.ports import free_port

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DOC = REPO / "docs" / "performance.md"

# Targets from issue 10.
TARGET_ADDED_RATIO = 2.0  # Rufweiche-added INVITE→180 ≤ 2× Kamailio-added, p50 and p99
TARGET_MACHINE_CPS = 300  # through the edge
TARGET_AUDIO_MS = 20.0  # added one-way delay, no loss
TARGET_WORKER_MB = 40.0  # RSS per worker; no growth over 10,000 calls
GROWTH_LIMIT_KB = 0.1  # kB per call: "no growth" = under 1 MB over 10,000 calls


@dataclass(frozen=True)
class Plan:
    latency_calls: int  # per row, in latency_rounds blocks interleaved over the rows
    latency_rounds: int
    latency_rate: float
    latency_hold_ms: int
    hold_ms: int  # rate search and memory
    step_seconds: float
    min_step_calls: int
    baseline_ladder: tuple[int, ...]
    worker_ladder: tuple[int, ...]
    pool_ladder: tuple[int, ...]  # edge + pool row
    refine_steps: int
    media_seconds: float
    media_load_rate: float  # short calls/s beside the second media call (0: none)
    memory_batches: int
    memory_batch_calls: int
    memory_rate: float  # calls held latency_hold_ms, like the latency blocks
    memory_settle_s: float  # idle time before each RSS sample
    pause_between_steps: float
    overload_rate: int  # worker rows: one step far above capacity; must not crash the worker
    recovery_limit_s: float  # after a failed step: wait until slow calls succeed again
    overload_seconds: float


FULL = Plan(
    latency_calls=400,
    latency_rounds=4,
    latency_rate=20,
    latency_hold_ms=0,
    hold_ms=100,
    step_seconds=4.0,
    min_step_calls=40,
    baseline_ladder=(100, 200, 400, 800, 1200, 1600),
    worker_ladder=(5, 10, 15, 20, 25, 30, 40, 50, 70, 100),
    pool_ladder=(50, 100, 150, 200, 250, 300, 350, 400),
    refine_steps=2,
    media_seconds=10.0,
    media_load_rate=10,
    memory_batches=5,
    memory_batch_calls=500,
    memory_rate=20,
    memory_settle_s=1.0,
    pause_between_steps=1.0,
    overload_rate=200,
    overload_seconds=2.0,
    recovery_limit_s=20.0,
)
QUICK = Plan(
    latency_calls=10,
    latency_rounds=1,
    latency_rate=20,
    latency_hold_ms=0,
    hold_ms=50,
    step_seconds=0.5,
    min_step_calls=5,
    baseline_ladder=(50, 200),
    worker_ladder=(10,),
    pool_ladder=(50,),
    refine_steps=0,
    media_seconds=1.0,
    media_load_rate=0,
    memory_batches=1,
    memory_batch_calls=10,
    memory_rate=20,
    memory_settle_s=0.3,
    pause_between_steps=0.3,
    overload_rate=100,
    overload_seconds=0.3,
    recovery_limit_s=5.0,
)


def log(msg: str) -> None:
    print(f"[sipbench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- one row: a SIPp callee and a target in front of it -------------------------------


class Row:
    """A SIPp callee plus a target; the target can be restarted after a crash."""

    def __init__(self, name: str, factory: TargetFactory, workdir: Path) -> None:
        self.name = name
        self.factory = factory
        self.workdir = workdir
        self.uas_port = free_port()
        self.uas_media = sipp.media_ports()
        self.rx_sock: socket.socket | None = None
        self._stack = contextlib.ExitStack()
        self._target: contextlib.ExitStack | None = None
        self.ep: Endpoint | None = None
        self.starts = 0
        self.keep_pcaps = False
        self._closed = False

    def __enter__(self) -> Row:
        # The media receiver owns the port the callee advertises in its SDP.
        self.rx_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stack.callback(self.rx_sock.close)
        self.rx_sock.bind(("127.0.0.1", 0))
        sdp_port = self.rx_sock.getsockname()[1]
        self._stack.enter_context(
            sipp.uas(self.workdir, port=self.uas_port, media_port=self.uas_media, sdp_port=sdp_port)
        )
        self.start_target()
        return self

    def start_target(self) -> Endpoint:
        self.stop_target()
        self.starts += 1
        stack = contextlib.ExitStack()
        try:
            self.ep = stack.enter_context(
                self.factory(self.workdir / f"target{self.starts}", self.uas_port)
            )
        except BaseException:
            stack.close()
            raise
        self._target = stack
        return self.ep

    def stop_target(self) -> None:
        if self._target is not None:
            self._target.close()
            self._target = None

    def __exit__(self, *exc: object) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop_target()
        self._stack.close()

    @property
    def endpoint(self) -> Endpoint:
        if self.ep is None:
            raise BenchError(f"row {self.name!r} has no running target")
        return self.ep

    def crash_note(self) -> dict[str, Any]:
        ep = self.endpoint
        tail = ""
        logs = sorted((self.workdir / f"target{self.starts}").glob("*.log"))
        if logs:
            tail = logs[0].read_text(errors="replace")[-600:]
        return {"exit_codes": ep.exit_codes(), "log_tail": tail}


# --- measurements ---------------------------------------------------------------------


def latency_block(row: Row, plan: Plan, calls: int, tag: str) -> tuple[sipp.UacRun, list[Any]]:
    """One block of ``calls`` calls at the latency rate, captured on the wire."""
    ep = row.endpoint
    uac_port = free_port()
    pcap = row.workdir / f"latency_{tag}.pcap"
    run, timings = wire.captured_uac(
        row.workdir / f"latency_{tag}", pcap, target=ep.target, service=ep.service,
        uac_port=uac_port, uas_port=row.uas_port, calls=calls, rate=plan.latency_rate,
        hold_ms=plan.latency_hold_ms,
    )  # fmt: skip
    if not row.keep_pcaps:
        pcap.unlink(missing_ok=True)
    return run, timings


def summarize_latency(name: str, runs: list[sipp.UacRun], timings: list[Any]) -> dict[str, Any]:
    ms = wire.latencies_ms(timings)
    ok = sum(r.stats.successful for r in runs if r.stats)
    failed = sum(r.stats.failed for r in runs if r.stats)
    return {
        "blocks": [r.as_dict() for r in runs],
        "calls": sum(r.calls for r in runs),
        "successful": ok,
        "failed": failed,
        "calls_seen": len(timings),
        "no_180": sum(1 for t in timings if t.ringing is None and t.answer is not None),
        "180_after_200": sum(
            1
            for t in timings
            if t.ringing is not None and t.answer is not None and t.ringing > t.answer
        ),
        "invite_180_ms": ms["ringing"],
        "invite_200_ms": ms["answer"],
        "invite_out_ms": ms["forward"] if name != "direct" else None,
    }


def measure_latency(rows: dict[str, Row], plan: Plan) -> dict[str, dict[str, Any]]:
    """Round-robin blocks over all rows, so that load from elsewhere hits every row alike."""
    runs: dict[str, list[sipp.UacRun]] = {n: [] for n in rows}
    timings: dict[str, list[Any]] = {n: [] for n in rows}
    notes: dict[str, list[str]] = {n: [] for n in rows}
    cpu: dict[str, float] = dict.fromkeys(rows, 0.0)
    per_block = max(1, plan.latency_calls // plan.latency_rounds)
    for rnd in range(plan.latency_rounds):
        for name, row in rows.items():
            if not row.endpoint.alive():
                notes[name].append(f"round {rnd}: target dead before the block, restarted")
                row.start_target()
            cpu0 = cpu_seconds(row.endpoint.pids())
            run, ts = latency_block(row, plan, per_block, str(rnd))
            cpu[name] += max(0.0, cpu_seconds(row.endpoint.pids()) - cpu0)
            runs[name].append(run)
            timings[name].extend(ts)
            if not row.endpoint.alive():
                notes[name].append(f"round {rnd}: target died: {row.crash_note()}")
            log(
                f"{name}: latency round {rnd + 1}/{plan.latency_rounds}: "
                f"{run.stats.successful if run.stats else '?'}/{per_block} ok"
            )
    out = {}
    for name in rows:
        out[name] = summarize_latency(name, runs[name], timings[name])
        out[name]["notes"] = notes[name]
        done = out[name]["successful"]
        if rows[name].endpoint.procs and done:
            # user+system CPU of the target (and its forked children) per completed call
            out[name]["cpu_ms_per_call"] = round(cpu[name] * 1000 / done, 3)
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of ``pids`` and their direct children (Kamailio forks its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted = set(pids)
    total = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            pid, ppid = int(entry.name), int(fields[1])
            if pid in wanted or ppid in wanted:
                total += int(fields[11]) + int(fields[12])
    return total / tick


def udp_counters() -> dict[str, int]:
    """Machine-wide UDP counters (/proc/net/snmp): drops show as RcvbufErrors."""
    with contextlib.suppress(OSError, ValueError):
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
        udp = [ln for ln in lines if ln and ln[0] == "Udp:"]
        if len(udp) == 2:
            return dict(zip(udp[0][1:], map(int, udp[1][1:]), strict=False))
    return {}


def run_step(
    row: Row, plan: Plan, rate: int, tag: str, seconds: float | None = None
) -> dict[str, Any]:
    calls = max(plan.min_step_calls, int(rate * (seconds or plan.step_seconds)))
    udp0 = udp_counters()
    run = sipp.run_uac(
        row.workdir / f"step_{tag}_{rate}",
        target=row.endpoint.target,
        service=row.endpoint.service,
        port=free_port(),
        calls=calls,
        rate=rate,
        hold_ms=plan.hold_ms,
        recv_timeout_ms=2000,
        extra_time=5.0,
    )
    alive = row.endpoint.alive()
    udp1 = udp_counters()
    step = {"rate": rate, **run.as_dict(), "target_alive": alive}
    # Machine-wide, so other sessions' traffic counts too: a hint, not a verdict.
    step["udp_rcvbuf_errors"] = udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0)
    if not alive:
        step["crash"] = row.crash_note()
    step["ok"] = run.ok and alive
    log(
        f"{row.name}: {rate} calls/s x {calls}: "
        f"{'ok' if step['ok'] else 'FAILED'} "
        f"(success {run.stats.successful if run.stats else '?'}, "
        f"failed {run.stats.failed if run.stats else '?'}, alive {alive})"
    )
    return step


def wait_recovered(row: Row, plan: Plan) -> float | None:
    """Seconds until a live target completes a few slow calls again after a failed step.

    Without this, the next step would measure the aftermath of the last one (e.g. an
    edge that marked its workers down), not the rate it offers. None: not within the limit.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < plan.recovery_limit_s:
        probe = sipp.run_uac(
            row.workdir / "recovery",
            target=row.endpoint.target,
            service=row.endpoint.service,
            port=0,
            calls=2,
            rate=4,
            hold_ms=0,
            recv_timeout_ms=2000,
            extra_time=3.0,
        )
        if probe.ok:
            return round(time.monotonic() - t0, 1)
        if not row.endpoint.alive():
            return None
        time.sleep(1.0)
    return None


def search_rate(
    row: Row, plan: Plan, ladder: tuple[int, ...], probe_overload: bool = False
) -> dict[str, Any]:
    """Climb ``ladder`` until the first failed step, then bisect ``refine_steps`` times.

    With ``probe_overload`` and no crash so far, one more short step at
    ``plan.overload_rate`` checks that overload costs failed calls, not the process.
    """
    steps: list[dict[str, Any]] = []
    crashes: list[dict[str, Any]] = []
    best: int | None = None
    first_bad: int | None = None

    def attempt(rate: int, tag: str) -> bool:
        if not row.endpoint.alive():
            row.start_target()
        step = run_step(row, plan, rate, tag)
        steps.append(step)
        if not step["target_alive"]:
            crashes.append({"rate": rate, **step["crash"]})
            row.start_target()
        elif not step["ok"]:
            step["recovery_s"] = wait_recovered(row, plan)
            if step["recovery_s"] is None:
                # Stuck after overload: the next step must not measure the aftermath.
                step["restarted"] = True
                row.start_target()
        time.sleep(plan.pause_between_steps)
        return bool(step["ok"])

    for rate in ladder:
        if attempt(rate, "climb"):
            best = rate
        else:
            first_bad = rate
            break
    lo = best or 0
    hi = first_bad
    for _ in range(plan.refine_steps):
        if hi is None or hi - lo <= max(1, lo // 10):
            break
        mid = (lo + hi) // 2
        if mid <= lo:
            break
        if attempt(mid, "refine"):
            lo = best = mid
        else:
            hi = mid
    overload = None
    if probe_overload and not crashes:
        # "No crash at any offered rate": one short step far above what the target holds.
        if not row.endpoint.alive():
            row.start_target()
        step = run_step(row, plan, plan.overload_rate, "overload", plan.overload_seconds)
        overload = {k: step[k] for k in ("rate", "calls", "successful", "failed", "target_alive")}
        if not step["target_alive"]:
            overload["crash"] = step["crash"]
            crashes.append({"rate": plan.overload_rate, "overload_probe": True, **step["crash"]})
            row.start_target()
        time.sleep(plan.pause_between_steps)
    return {
        "max_ok_cps": best,
        "first_failed_cps": hi,
        "overload_probe": overload,
        "ceiling_reached": first_bad is None,
        "ladder_top": ladder[-1],
        "crashes": crashes,
        "steps": steps,
    }


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM from /proc/PID/status and Pss from smaps_rollup, in kB."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    return out


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs."""
    if len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


def measure_memory(row: Row, plan: Plan, rate: float) -> dict[str, Any]:
    """RSS of a freshly started target, then after each batch of calls."""
    ep = row.start_target()
    pid = ep.pids()[0]
    time.sleep(plan.memory_settle_s)
    samples = [{"calls": 0, **rss_kb(pid)}]
    done = 0
    failed = 0
    for b in range(plan.memory_batches):
        run = sipp.run_uac(
            row.workdir / f"memory_{b}",
            target=ep.target,
            service=ep.service,
            port=free_port(),
            calls=plan.memory_batch_calls,
            rate=rate,
            hold_ms=plan.latency_hold_ms,
            recv_timeout_ms=2000,
        )
        done += run.stats.successful if run.stats else 0
        failed += run.stats.failed if run.stats else plan.memory_batch_calls
        if not ep.alive():
            return {"crashed_after_calls": done, "samples": samples, "crash": row.crash_note()}
        time.sleep(plan.memory_settle_s)  # sockets of ended calls are released after a delay
        samples.append({"calls": done, **rss_kb(pid)})
        log(f"{row.name}: memory after {done} calls: {samples[-1]}")
    xs = [float(s["calls"]) for s in samples]
    ys = [float(s.get("VmRSS", 0)) for s in samples]
    tail = slice(1, None) if len(samples) > 2 else slice(None)  # skip warm-up
    per_call = slope(xs[tail], ys[tail])
    half = len(samples) // 2
    last_half = (
        (ys[-1] - ys[half]) / (xs[-1] - xs[half])
        if len(samples) > 2 and xs[-1] > xs[half]
        else None
    )
    return {
        "rate": rate,
        "calls": done,
        "failed": failed,
        "idle_rss_kb": samples[0].get("VmRSS"),
        "idle_pss_kb": samples[0].get("Pss"),
        "final_rss_kb": samples[-1].get("VmRSS"),
        "growth_kb_per_call": round(per_call, 3) if per_call is not None else None,
        "growth_kb_per_call_last_half": round(last_half, 3) if last_half is not None else None,
        "growth_kb_per_call_all": round(s, 3) if (s := slope(xs, ys)) is not None else None,
        "samples": samples,
    }


def measure_media(row: Row, plan: Plan, load_rate: float = 0) -> dict[str, Any]:
    """One media call; with ``load_rate``, SIPp places short calls beside it meanwhile."""
    if row.rx_sock is None:
        raise BenchError("media receiver socket missing")
    ep = row.endpoint
    load: list[sipp.UacRun] = []
    thread = None
    if load_rate:
        calls = max(1, int(load_rate * plan.media_seconds))

        def background() -> None:
            load.append(
                sipp.run_uac(
                    row.workdir / "media_load",
                    target=ep.target,
                    service=ep.service,
                    port=0,
                    calls=calls,
                    rate=load_rate,
                    hold_ms=plan.latency_hold_ms,
                    recv_timeout_ms=2000,
                )
            )

        thread = threading.Thread(target=background, name="media-load", daemon=True)
        thread.start()
        time.sleep(0.2)
    try:
        out = media.measure((ep.host, ep.port), row.rx_sock, plan.media_seconds, user=ep.service)
    finally:
        if thread is not None:
            thread.join(timeout=plan.media_seconds + 30)
    if load_rate:
        out["load"] = load[0].as_dict() if load else {"error": "background SIPp did not finish"}
    return out


# --- the run --------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pj = "missing"
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        pj = version("pjsua2-python")
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pjsua2_python": pj,
        "sipp": sipp.sipp_version(),
        "kamailio": kamailio_version(),
        "git": rev,
        "loadavg_start": os.getloadavg(),
    }


def open_rows(
    names: list[str], workdir: Path, stack: contextlib.ExitStack, results: dict[str, Any]
) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for name in names:
        results[name] = {"row": name}
        try:
            row = Row(name, TARGETS[name], workdir / name)
            rows[name] = stack.enter_context(row)
            results[name]["target"] = {k: str(v) for k, v in row.endpoint.info.items()}
        except TargetUnavailable as exc:
            results[name]["skipped"] = str(exc)
            log(f"{name}: skipped: {exc}")
        except BenchError as exc:
            results[name]["error"] = str(exc)
            log(f"{name}: ERROR at start: {exc}")
    return rows


def per_row(name: str, row: Row, plan: Plan, result: dict[str, Any]) -> None:
    """Media, rate search and memory of one row (the row's processes stop afterwards)."""
    t0 = time.monotonic()
    ladder = {"direct": plan.baseline_ladder, "kamailio": plan.baseline_ladder}.get(
        name, plan.pool_ladder if name.startswith("edge_pool") else plan.worker_ladder
    )
    try:
        if name in ("direct", "worker") or name.startswith("edge_pool"):
            if not row.endpoint.alive():
                row.start_target()
            log(f"{name}: media, {plan.media_seconds} s")
            try:
                result["media"] = measure_media(row, plan)
            except BenchError as exc:
                result["media"] = {"error": str(exc)}
            if name != "direct" and plan.media_load_rate:
                log(f"{name}: media beside {plan.media_load_rate} calls/s")
                try:
                    result["media_under_load"] = measure_media(row, plan, plan.media_load_rate)
                except BenchError as exc:
                    result["media_under_load"] = {"error": str(exc)}
        log(f"{name}: rate search over {ladder}")
        probe = name not in ("direct", "kamailio")
        result["rate_search"] = search_rate(row, plan, ladder, probe_overload=probe)
        if name == "worker":
            log(f"{name}: memory, {plan.memory_batches} x {plan.memory_batch_calls} calls")
            result["memory"] = measure_memory(row, plan, plan.memory_rate)
    except BenchError as exc:
        result["error"] = str(exc)
        log(f"{name}: ERROR: {exc}")
    result["seconds"] = round(time.monotonic() - t0, 1)


def added(row: dict[str, Any], base: dict[str, Any], metric: str, q: str) -> float | None:
    try:
        return float(row["latency"][metric][q]) - float(base["latency"][metric][q])
    except (KeyError, TypeError):
        return None


def headline(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    direct = rows.get("direct", {})
    out: dict[str, Any] = {}
    for name in ("kamailio", "worker", "edge_pool"):
        if name in rows and "latency" in rows[name]:
            out[name] = {
                f"added_{m}_{q}": added(rows[name], direct, f"invite_{m}_ms", q)
                for m in ("180", "200")
                for q in ("p50", "p99")
            }
    for via in ("worker", "edge_pool"):
        k, w = out.get("kamailio"), out.get(via)
        if k and w:
            ratios: dict[str, float | None] = {}
            for q in ("p50", "p99"):
                a, b = w[f"added_180_{q}"], k[f"added_180_{q}"]
                ratios[q] = round(a / b, 2) if a is not None and b else None
            out[f"ratio_{via}_vs_kamailio_180"] = ratios
    return out


ROW_TEXT = {
    "direct": "SIPp caller → SIPp callee, no hop",
    "kamailio": "SIPp → Kamailio (stateful `t_relay`, `record_route`, children=2, `-m 512`) → SIPp",
    "worker": "SIPp → one worker (`python -m switch.worker`, one-rule plan ringing the callee 10 s)"
    " → SIPp",
    "edge_pool": "SIPp (as trunk) → edge (`switch.edge`: Kamailio dispatcher alg 10, default "
    "pacing) → pool of workers → SIPp",
}


def crash_cause(note: dict[str, Any]) -> str:
    """The line of a crashed target's log that says why, if there is one."""
    for line in reversed(str(note.get("log_tail", "")).splitlines()):
        if "Assertion" in line or "Traceback" in line or "Error" in line:
            return line.strip()[-160:]
    return f"exit codes {note.get('exit_codes')}"


def _step_text(step: dict[str, Any]) -> str:
    if step["ok"]:
        return "ok"
    if not step["target_alive"]:
        return "CRASH"
    text = f"fail ({step.get('failed')} failed"
    if "recovery_s" in step:
        rec = step["recovery_s"]
        text += ", no recovery: restarted" if rec is None else f", recovered in {rec} s"
    return text + ")"


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    rows: dict[str, dict[str, Any]] = report["rows"]
    h = report["headline"]
    plan = report["plan"]
    lines = [
        "# Rufweiche performance",
        "",
        f"Latest run: {report['started']} ({'quick smoke run' if report['quick'] else 'full run'}"
        f", {report['seconds']} s), git {m['git']}. Produced by `python -m bench.sipbench`; "
        f"raw figures in `{report.get('path', 'bench/results/' + report['file'])}`, "
        "earlier runs beside it.",
        "",
        f"Machine: {m['nproc']} × {m['cpu_model']}, Linux {m['kernel']}, Python {m['python']}, "
        f"pjsua2-python {m['pjsua2_python']}, {m['sipp']}, Kamailio {m['kamailio']}. "
        f"Load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])} "
        "(other sessions may share the machine).",
        "",
        "Rows: " + "; ".join(f"**{n}**: {ROW_TEXT.get(n, n)}" for n in rows) + ".",
        "",
        "All traffic on 127.0.0.1. Caller and callee are SIPp 3.6 (`bench/scenarios/`): the "
        "callee sends 180 and 200 at once and echoes Record-Route. Delays come from kernel "
        "timestamps of a `dumpcap` capture on `lo` (caller's port: INVITE out → first 180/200 "
        "in; callee's port: INVITE forwarded), not from SIPp's 1 ms-resolution timers.",
        "",
        f"## Signalling delay at {plan['latency_rate']} calls/s "
        f"({plan['latency_calls']} calls per row in {plan['latency_rounds']} interleaved blocks, "
        f"calls held {plan['latency_hold_ms']} ms)",
        "",
        "| row | INVITE→180 p50 | p99 | INVITE→200 p50 | p99 | INVITE in→out p50 | p99 "
        "| added 180 p50 | added 180 p99 | calls ok |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    notes: list[str] = []
    for name, r in rows.items():
        if "latency" not in r:
            why = r.get("skipped") or r.get("error") or "?"
            lines.append(f"| {name} | {why} | | | | | | | | |")
            continue
        lat = r["latency"]
        r180, r200, fwd = (
            lat["invite_180_ms"] or {},
            lat["invite_200_ms"] or {},
            lat["invite_out_ms"] or {},
        )
        hd = h.get(name, {})
        lines.append(
            f"| {name} | {_fmt(r180.get('p50'), 3)} | {_fmt(r180.get('p99'), 3)} "
            f"| {_fmt(r200.get('p50'), 3)} | {_fmt(r200.get('p99'), 3)} "
            f"| {_fmt(fwd.get('p50'), 3)} | {_fmt(fwd.get('p99'), 3)} "
            f"| {_fmt(hd.get('added_180_p50'), 3)} | {_fmt(hd.get('added_180_p99'), 3)} "
            f"| {lat['successful']}/{lat['calls']} |"
        )
        if lat.get("180_after_200") or lat.get("no_180") or lat.get("notes"):
            notes.append(
                f"{name}: {lat['180_after_200']} calls had the 180 after the 200, "
                f"{lat['no_180']} no 180; {'; '.join(lat.get('notes') or []) or 'no crash'}"
            )
    cpu_notes = [
        f"{n} {r['latency']['cpu_ms_per_call']:.2f} ms"
        for n, r in rows.items()
        if "latency" in r and r["latency"].get("cpu_ms_per_call") is not None
    ]
    lines += ["", "All delays in ms. *added* = row minus the direct SIPp→SIPp row of this run."]
    if cpu_notes:
        lines.append(
            "CPU per call of the target (user+system, its processes and their children, "
            "during the latency blocks, idle polling included): " + ", ".join(cpu_notes) + "."
        )
    lines += [*(f"- {n}" for n in notes), ""]

    lines += ["## Targets (issue 10)", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    for via in ("worker", "edge_pool"):
        ratio = h.get(f"ratio_{via}_vs_kamailio_180")
        if ratio:
            ok = None
            if ratio["p50"] is not None and ratio["p99"] is not None:
                ok = ratio["p50"] <= TARGET_ADDED_RATIO and ratio["p99"] <= TARGET_ADDED_RATIO
            lines.append(
                f"| added INVITE→180 ({via}) ≤ {TARGET_ADDED_RATIO:g}× Kamailio's, p50 and p99 "
                f"| {_fmt(ratio['p50'])}× / {_fmt(ratio['p99'])}× | {_verdict(ok)} |"
            )
    edge = rows.get("edge_pool", {})
    edge_cps = edge.get("rate_search", {}).get("max_ok_cps")
    pool = edge.get("target", {})
    lines.append(
        f"| ≥ {TARGET_MACHINE_CPS} calls/s per machine through the edge, zero failures "
        + (
            f"| {edge_cps} calls/s ({pool.get('workers', '?')} workers, "
            f"{plan['hold_ms']} ms calls) "
            if edge_cps
            else f"| {edge.get('skipped') or edge.get('error') or '–'} "
        )
        + f"| {_verdict(None if not edge_cps else edge_cps >= TARGET_MACHINE_CPS)} |"
    )
    w = rows.get("worker", {})
    rs = w.get("rate_search")
    if rs:
        crashed = [c["rate"] for c in rs["crashes"]]
        probe = rs.get("overload_probe")
        if crashed:
            how = (
                f"crashed at {', '.join(map(str, crashed))} calls/s offered "
                f"(`{crash_cause(rs['crashes'][0])}`)"
            )
        elif probe:
            how = (
                f"no crash, also not at {probe['rate']} calls/s offered "
                f"({probe['successful']} of {probe['calls']} calls ok)"
            )
        else:
            how = "no crash (overload not probed)"
        lines.append(
            "| per worker: highest rate with zero failures, no crash at any offered rate "
            f"| {_fmt(rs['max_ok_cps'])} calls/s ({plan['hold_ms']} ms calls); {how} "
            f"| {_verdict(not crashed and probe is not None)} |"
        )
    wm = w.get("media")
    if wm and "delay_ms" in wm and wm["delay_ms"]:
        base = rows.get("direct", {}).get("media", {}).get("delay_ms") or {}
        a50 = wm["delay_ms"]["p50"] - base.get("p50", 0.0)
        a99 = wm["delay_ms"]["p99"] - base.get("p99", 0.0)
        ok = a99 <= TARGET_AUDIO_MS and wm["burst_loss"] == 0
        text = (
            f"+{a50:.1f} ms p50 / +{a99:.1f} ms p99, {wm['burst_loss']} of "
            f"{wm['bursts_sent']} bursts lost"
        )
        wl = w.get("media_under_load")
        if wl and wl.get("delay_ms"):
            b50 = wl["delay_ms"]["p50"] - base.get("p50", 0.0)
            b99 = wl["delay_ms"]["p99"] - base.get("p99", 0.0)
            ok = ok and b99 <= TARGET_AUDIO_MS and wl["burst_loss"] == 0
            text += (
                f"; beside load +{b50:.1f} / +{b99:.1f} ms, {wl['burst_loss']} of "
                f"{wl['bursts_sent']} lost"
            )
        lines.append(
            f"| added one-way audio delay ≤ {TARGET_AUDIO_MS:g} ms, no loss "
            f"| {text} | {_verdict(ok)} |"
        )
    elif wm:
        lines.append(f"| added one-way audio delay ≤ {TARGET_AUDIO_MS:g} ms | {wm} | – |")
    mem = w.get("memory")
    if mem and "idle_rss_kb" in mem:
        idle_mb = (mem["idle_rss_kb"] or 0) / 1024
        final_mb = (mem["final_rss_kb"] or 0) / 1024
        g = mem["growth_kb_per_call"]
        g2 = mem.get("growth_kb_per_call_last_half")
        steady = g2 if g2 is not None else g
        proj = (
            (mem["final_rss_kb"] + (10_000 - mem["calls"]) * steady) / 1024
            if steady is not None
            else None
        )
        ok = final_mb <= TARGET_WORKER_MB and steady is not None and steady <= GROWTH_LIMIT_KB
        lines.append(
            f"| ≤ {TARGET_WORKER_MB:g} MB per worker, no growth over 10,000 calls "
            f"| idle {idle_mb:.1f} MB, {final_mb:.1f} MB after {mem['calls']} calls "
            f"({mem['failed']} failed, {mem['rate']:g} calls/s); "
            f"+{_fmt(g)} kB/call after the first batch, +{_fmt(g2)} kB/call over the last half "
            f"(→ {_fmt(proj, 1)} MB at 10,000 calls) | {_verdict(ok)} |"
        )
    elif mem:
        lines.append(f"| ≤ {TARGET_WORKER_MB:g} MB per worker | crashed: {mem} | **not met** |")

    lines += [
        "",
        f"## Highest rate with zero failed calls ({plan['hold_ms']} ms calls, "
        f"steps of {plan['step_seconds']} s)",
        "",
        "| row | max ok calls/s | first failing step | crashes | steps (calls/s: ok) |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for name, r in rows.items():
        rs = r.get("rate_search")
        if not rs:
            continue
        best = _fmt(rs["max_ok_cps"])
        if rs["ceiling_reached"]:
            best = f"≥ {best} (top of ladder)"
        steps = ", ".join(f"{s['rate']}: {_step_text(s)}" for s in rs["steps"])
        crashes = ", ".join(str(c["rate"]) for c in rs["crashes"]) or "none"
        probe = rs.get("overload_probe")
        if probe:
            verdict = "survived" if probe["target_alive"] else "CRASH"
            steps += f"; overload {probe['rate']}: {verdict} ({probe['successful']} ok)"
        lines.append(f"| {name} | {best} | {_fmt(rs['first_failed_cps'])} | {crashes} | {steps} |")

    lines += ["", "## Media: one-way audio delay (PCMU, 20 ms packets)", ""]
    lines += [
        "| path | p50 ms | p99 ms | max ms | bursts heard/sent | RTP packets in/out |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        for key, label in (("media", name), ("media_under_load", f"{name}, beside load")):
            md = r.get(key)
            if not md:
                continue
            if "error" in md or not md.get("delay_ms"):
                lines.append(f"| {label} | {md.get('error', 'no burst heard')} | | | | |")
                continue
            d = md["delay_ms"]
            if "load" in md:
                ld = md["load"]
                label += f" ({ld.get('successful')}/{ld.get('calls')} load calls ok)"
            lines.append(
                f"| {label} | {d['p50']:.2f} | {d['p99']:.2f} | {d['max']:.2f} "
                f"| {md['bursts_heard']}/{md['bursts_sent']} "
                f"| {md['packets_received']}/{md['packets_sent']} |"
            )
    lines += [
        "",
        "One call, a small Python caller (`bench/media.py`) streaming silence with a 40 ms "
        "1 kHz burst every 200 ms; the far end detects each burst's first loud sample. "
        f"*Beside load*: the same while SIPp places {plan.get('media_load_rate', 0)} short "
        "calls/s through the same target. "
        "Delay = heard − spoken for that sample (send time from the sender, arrival from "
        "the kernel's receive timestamp).",
        "",
    ]
    if mem and "samples" in mem:
        lines += ["## Worker memory", "", "| calls | VmRSS kB | Pss kB |", "| ---: | ---: | ---: |"]
        for s in mem["samples"]:
            lines.append(f"| {s['calls']} | {s.get('VmRSS', '–')} | {s.get('Pss', '–')} |")
        lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="sipbench-"))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def run(
    names: list[str],
    quick: bool,
    out_dir: Path = RESULTS,
    doc: Path | None = DOC,
    keep: bool = False,
    on_row: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    started = datetime.now(UTC)
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "quick": quick,
        "plan": asdict(plan),
        "machine": machine_info(),
        "rows": {},
    }
    with _workdir(keep) as wd, contextlib.ExitStack() as stack:
        if keep:
            log(f"work directory {wd}")
        results: dict[str, Any] = report["rows"]
        rows = open_rows(names, wd, stack, results)
        for row in rows.values():
            row.keep_pcaps = keep
        if rows:
            log(
                f"latency: {plan.latency_rounds} rounds over {list(rows)}, "
                f"{plan.latency_calls} calls per row at {plan.latency_rate}/s"
            )
            try:
                for name, lat in measure_latency(rows, plan).items():
                    results[name]["latency"] = lat
            except BenchError as exc:
                for name in rows:
                    results[name].setdefault("error", f"latency: {exc}")
        for name, row in rows.items():
            try:
                per_row(name, row, plan, results[name])
            finally:
                row.__exit__(None, None, None)
            if on_row:
                on_row(name, results[name])
    report["headline"] = headline(report["rows"])
    report["seconds"] = round(time.monotonic() - t0, 1)
    report["machine"]["loadavg_end"] = os.getloadavg()
    out_dir.mkdir(parents=True, exist_ok=True)
    fname = f"sipbench-{started.strftime('%Y%m%dT%H%M%SZ')}{'-quick' if quick else ''}.json"
    report["file"] = fname
    path = (out_dir / fname).resolve()
    report["path"] = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    (out_dir / fname).write_text(json.dumps(report, indent=1, default=str) + "\n")
    text = markdown(report)
    if doc is not None:
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(text + "\n")
    print(text)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sipbench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few calls per row (< 30 s)")
    ap.add_argument("--rows", default="direct,kamailio,worker,edge_pool")
    ap.add_argument("--out", type=Path, default=None, help="directory for the JSON file")
    ap.add_argument("--doc", type=Path, default=None, help="Markdown file to write")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/performance.md")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, pcaps)")
    ap.add_argument("--render", type=Path, help="only print the Markdown of an earlier JSON run")
    args = ap.parse_args(argv)
    if args.render:
        text = markdown(json.loads(args.render.read_text()))
        if args.doc:
            args.doc.write_text(text + "\n")
        print(text)
        return 0
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in TARGETS]
    if unknown:
        ap.error(f"unknown rows {unknown!r}; choose from {sorted(TARGETS)}")
    # A smoke run must not replace the committed figures: it writes no doc unless asked to,
    # and its JSON goes to a temporary directory unless --out says otherwise.
    doc = None if args.no_doc or (args.quick and not args.doc) else (args.doc or DOC)
    out = args.out or (Path(tempfile.gettempdir()) / "sipbench-quick" if args.quick else RESULTS)
    if not shutil.which("sipp") or not shutil.which("dumpcap"):
        print("sipbench: needs sipp (sip-tester) and dumpcap (tshark): make peers", file=sys.stderr)
        return 2
    run(rows, args.quick, out_dir=out, doc=doc, keep=args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
