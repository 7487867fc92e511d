"""What a worker process costs: PSS and idle CPU, forked vs spawned, and growth over calls
(issue 16, "Memory": ≤ 20 MB PSS per worker, no growth over 10,000 calls, idle workers
cost no measurable CPU).

    python -m bench worker_memory -- [--workers 8] [--idle 20] [--calls 10000] [--rate 40]
    python -m bench worker_memory -- --workers 2 --idle 3 --calls 200     # a quick look

Rows, in one run:

- ``spawn`` (the baseline): ``rufweiche run`` with ``worker_start: spawn``, N workers each
  a fresh ``python -m switch.worker``;
- ``fork``: the same with ``worker_start: fork`` (the default): workers forked from the
  zygote (switch/worker/forkserver.py), which is counted apart and shared out per worker.

Per row, after the switch is ready and idle: each worker's PSS and RSS
(``/proc/PID/smaps_rollup``) and its CPU over ``--idle`` seconds (utime + stime). Then,
on the ``fork`` row, the growth: ``--calls`` calls (SIPp through the edge, 0 ms hold,
``--rate`` per second) to a SIPp callee, and the workers' PSS before, after a tenth, half
and all of them. The load average is printed with the figures: on a busy machine the CPU
figures are not those of a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.procfs import TICK, cpu_ticks, descendants, memory_kb, parent
from bench.sipp import BenchError, run_uac, uas
from bench.targets import BENCH_NUMBER, write_dialplan
from tests.helpers.ports import free_port
from tests.helpers.processes import REPO
from tests.helpers.switch import Switch


def _log(msg: str) -> None:
    print(f"[worker_memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def worker_pids(supervisor: int) -> tuple[list[int], int | None]:
    """The workers under ``supervisor`` and the zygote (their parent when forked)."""
    python = []
    for pid in descendants(supervisor):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != supervisor and b"switch.worker" in cmd:
            python.append(pid)
    parents = {pid: parent(pid) for pid in python}
    zygotes = {p for p in parents.values() if p in parents}
    zygote = next(iter(zygotes), None)
    return [p for p in python if p not in zygotes], zygote


def _mb(kb: float) -> float:
    return round(kb / 1024, 1)


def workers_pss(supervisor: int) -> dict[str, Any]:
    """PSS of the workers (MB, per worker and with the zygote's share) now."""
    workers, zygote = worker_pids(supervisor)
    pss = [memory_kb(p)[0] for p in workers]
    zygote_kb = memory_kb(zygote)[0] if zygote else 0
    share = zygote_kb / len(workers) if workers else 0.0
    return {
        "workers": len(workers),
        "pss_mb_each": [_mb(k) for k in pss],
        "pss_mb_mean": _mb(sum(pss) / len(pss)) if pss else 0.0,
        "zygote_pss_mb": _mb(zygote_kb),
        "pss_mb_per_worker_with_zygote": _mb(sum(pss) / len(pss) + share) if pss else 0.0,
    }


def start_switch(workdir: Path, uas_port: int, workers: int, mode: str) -> Switch:
    plans = workdir / "dialplans"
    write_dialplan(plans, uas_port)
    base = max(1024, min(free_port(span=2, even=True), 61000))
    relay = {"ng_listen": f"127.0.0.1:{free_port()}", "port_min": base, "port_max": base + 198}
    settings = {
        "workers": workers,
        "worker_start": mode,
        "edge": {
            "trunk_sources": ["127.0.0.1/32"],
            "pike_density": 100_000,  # one source (SIPp) sends every call
            "log_level": 0,
            "media_relay": relay,  # its own ports: another switch on this host keeps its own
        },
    }
    path = workdir / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    sw = Switch(workdir, plans, "--settings", str(path), "--log-level", "warning")
    with sw.log.open("wb") as out:
        sw.proc = subprocess.Popen(
            sw.cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    sw.wait_until(lambda: sw.health()["ready"], 60 + workers * 3, "switch ready")
    time.sleep(3)  # the dispatcher's first OPTIONS round; start-up work settles
    return sw


def measure_row(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    uas_port = free_port()
    row: dict[str, Any] = {"mode": mode, "loadavg_start": os.getloadavg()}
    with uas(workdir / "uas", port=uas_port, media_port=free_port(span=2, even=True)):
        sw = start_switch(workdir, uas_port, args.workers, mode)
        try:
            assert sw.proc is not None
            workers, _ = worker_pids(sw.proc.pid)
            if len(workers) != args.workers:
                raise BenchError(f"{mode}: {len(workers)} workers found, {args.workers} asked")
            row.update(workers_pss(sw.proc.pid))
            rss = [memory_kb(p)[1] for p in workers]
            row["rss_mb_mean"] = _mb(sum(rss) / len(rss))
            before = {p: cpu_ticks(p) for p in workers}
            time.sleep(args.idle)
            used = [cpu_ticks(p) - before[p] for p in workers]
            row["idle_cpu_pct_per_worker"] = round(
                100 * sum(used) / TICK / args.idle / len(workers), 3
            )
            if mode == "fork" and args.calls:
                row["growth"] = growth(sw, args, workdir)
        finally:
            sw.stop()
    row["loadavg_end"] = os.getloadavg()
    return row


def growth(sw: Switch, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """PSS after 0, a tenth, half and all of ``args.calls`` calls."""
    assert sw.proc is not None
    points = [0, args.calls // 10, args.calls // 2, args.calls]
    out = [{"calls": 0, "ok": 0, **workers_pss(sw.proc.pid)}]
    done = ok = 0
    for point in points[1:]:
        batch = point - done
        _log(f"growth: {batch} calls at {args.rate}/s (to {point})")
        run = run_uac(
            workdir / "uac", target=f"127.0.0.1:{sw.sip_port}", port=0, calls=batch,
            rate=args.rate, hold_ms=0, service=BENCH_NUMBER, name=f"uac{point}",
        )  # fmt: skip
        done = point
        ok += run.stats.successful if run.stats else 0
        time.sleep(1)
        out.append({"calls": point, "ok": ok, **workers_pss(sw.proc.pid)})
    return out


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| start | workers | PSS MB per worker (mean) | zygote MB | per worker with zygote"
        " | RSS MB | idle CPU % per worker | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        load = f"{r['loadavg_start'][0]:.2f} → {r['loadavg_end'][0]:.2f}"
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['pss_mb_mean']} | {r['zygote_pss_mb']}"
            f" | {r['pss_mb_per_worker_with_zygote']} | {r['rss_mb_mean']}"
            f" | {r['idle_cpu_pct_per_worker']} | {load} |"
        )
    for r in rows:
        if r.get("growth"):
            head = "| calls (ok) | PSS MB per worker (mean) | MB per 1,000 calls after warm-up |"
            lines += ["", head, "| ---: | ---: | ---: |"]
            warm = r["growth"][1] if len(r["growth"]) > 1 else r["growth"][0]
            for point in r["growth"]:
                span = point["calls"] - warm["calls"]
                per_k = (
                    (point["pss_mb_mean"] - warm["pss_mb_mean"]) / span * 1000 if span > 0 else 0
                )
                lines.append(
                    f"| {point['calls']} ({point['ok']}) | {point['pss_mb_mean']} | "
                    + (f"{per_k:+.3f} |" if span > 0 else "– |")
                )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench worker_memory")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured")
    ap.add_argument("--calls", type=int, default=10_000, help="calls for the growth row")
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="calls/s (default 5 per worker: the edge"
        " gives each worker 2 calls at a time, ~6-7 short calls/s)",
    )
    ap.add_argument("--rows", default="spawn,fork")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.rate = args.rate or 5.0 * args.workers
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-wmem-") as tmp:
            for mode in args.rows.split(","):
                _log(f"row {mode}: {args.workers} workers")
                rows.append(measure_row(mode, args, Path(tmp) / mode))
    except (BenchError, AssertionError) as exc:  # AssertionError: the switch did not start
        print(f"worker_memory: {str(exc)[-2000:]}", file=sys.stderr)
        return 1
    print(f"{args.workers} workers idle {args.idle:.0f} s; growth: {args.calls} calls at"
          f" {args.rate:.0f}/s, 0 ms hold, through the edge.\n")  # fmt: skip
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


__all__ = ["main", "render", "worker_pids", "workers_pss"]
