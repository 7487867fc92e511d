"""One-way audio delay of the media paths, side by side and interleaved in one run (issue 16).

    python -m bench.media_path [--rounds 3] [--seconds 3] [--burn 0] [--rows a,b,...]

Rows (each its own SIPp callee, ``scenarios/uas_reinvite.xml``, on 127.0.0.1):

- ``direct``: the caller talks to the callee, no hop (the baseline);
- ``rtpengine``: Kamailio + rtpengine (userspace, as the edge runs it) relaying caller →
  callee: "rtpengine alone";
- ``worker``: one Rufweiche worker, media through the pjsua2 conference bridge;
- ``bypass``: the same worker with ``--media-bypass`` (switch/call/mediapath.py);
- ``rtpengine_bypass``: Kamailio + rtpengine in front of the bypassing worker, as a call
  from a trunk through the edge is relayed when its media leaves the host.

Both directions of each call are measured (``--one-way``: caller → callee only): the
callee answers like a symmetric-RTP phone, to where the caller's audio came from.
The caller is :mod:`bench.media`'s (PCMU, 20 ms packets, a 40 ms burst every 200 ms); the
delay is burst heard (kernel timestamp) − burst spoken. Rows are measured in turn, round
after round, so that the machine's load (shared) falls on all alike; the load average is
printed with the figures. ``--burn N`` runs N busy-loop processes meanwhile (CPU
starvation, as other test runs on the machine cause it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import media, sipp
from bench.sipp import BenchError, media_ports, wait_sip_ready
from bench.targets import BENCH_NUMBER, REPO, kamailio_rtpengine, write_dialplan
from bench.wire import summarize_ms
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_process

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "uas_reinvite.xml"
WORKER_SIDE_FLAGS = "asymmetric strict-source"
ROWS = ("direct", "rtpengine", "worker", "bypass", "rtpengine_bypass")


@dataclass
class PathRow:
    name: str
    host: str
    port: int
    user: str
    rx: socket.socket
    pids: list[int] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


def _log(msg: str) -> None:
    print(f"[media_path {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _worker(workdir: Path, uas_port: int, *extra: str) -> Iterator[tuple[int, int]]:
    plans = workdir / "dialplans"
    write_dialplan(plans, uas_port)
    port = free_port()
    cmd = [sys.executable, "-m", "switch.worker", "--sip", f"127.0.0.1:{port}"]
    cmd += ["--dialplans", str(plans), "--name", workdir.name, *extra]
    log = (workdir / "worker.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_sip_ready("127.0.0.1", port, proc, timeout=30)
        yield port, proc.pid
    finally:
        stop_process(proc, 5.0)
        log.close()


def open_row(
    name: str, workdir: Path, stack: contextlib.ExitStack, uas_extra: tuple[str, ...] = ()
) -> PathRow:
    workdir.mkdir(parents=True, exist_ok=True)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stack.callback(rx.close)
    rx.bind(("127.0.0.1", 0))
    uas_port = free_port()
    stack.enter_context(
        sipp.uas(
            workdir,
            port=uas_port,
            media_port=media_ports(),
            sdp_port=rx.getsockname()[1],
            scenario=SCENARIO,
            extra=uas_extra,
        )
    )
    if name == "direct":
        return PathRow(name, "127.0.0.1", uas_port, "uas", rx)
    if name == "rtpengine":
        port, pids = stack.enter_context(kamailio_rtpengine(workdir, uas_port))
        return PathRow(name, "127.0.0.1", port, "uas", rx, pids)
    bypass = ("--media-bypass",) if "bypass" in name else ()
    wport, wpid = stack.enter_context(_worker(workdir, uas_port, *bypass))
    if name == "rtpengine_bypass":
        # As the edge asks for the worker side (route[MEDIA]): the worker's SDP address
        # only, never latching onto pjsua's own port (its stream sends 600 ms of silence
        # whenever it starts: PJMEDIA_STREAM_VAD_SUSPEND_MSEC).
        flags = " " + WORKER_SIDE_FLAGS
        port, pids = stack.enter_context(kamailio_rtpengine(workdir / "edge", wport, flags))
        return PathRow(name, "127.0.0.1", port, BENCH_NUMBER, rx, [wpid, *pids])
    return PathRow(name, "127.0.0.1", wport, BENCH_NUMBER, rx, [wpid])


def _burn(stop: Any) -> None:  # pragma: no cover - a child process
    while not stop.is_set():
        for _ in range(100_000):
            pass


def summarize(row: PathRow) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": []}
    for way in ("forward", "reverse"):
        delays: list[float] = []
        sent = heard = streams = 0
        for r in row.results:
            part = r if way == "forward" else r.get("reverse")
            if "error" in r or part is None:
                continue
            delays.extend(part["delays_s"])
            sent += part["bursts_sent"]
            heard += part["bursts_heard"]
            streams = max(streams, part["streams_received"])
        out[way] = {
            "delay_ms": summarize_ms(delays) or {},
            "bursts": f"{heard}/{sent}",
            "max_streams": streams,
        }
    for r in row.results:
        if "error" in r:
            out["rounds"].append({"error": r["error"]})
            continue
        d, v = r["delay_ms"] or {}, (r.get("reverse") or {}).get("delay_ms") or {}
        out["rounds"].append({"p50": d.get("p50"), "p99": d.get("p99"), "lost": r["burst_loss"],
                              "rev_p99": v.get("p99")})  # fmt: skip
    return out


def measure_once(row: PathRow, seconds: float, reverse: bool = True) -> dict[str, Any]:
    try:
        return media.measure((row.host, row.port), row.rx, seconds, user=row.user, reverse=reverse)
    except BenchError as exc:
        return {"error": str(exc)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--burn", type=int, default=0, help="busy-loop processes beside")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one-way", action="store_true", help="caller → callee only")
    args = ap.parse_args(argv)
    names = [n for n in args.rows.split(",") if n]
    for n in names:
        if n not in ROWS:
            ap.error(f"unknown row {n!r}; rows: {', '.join(ROWS)}")
    load_start = os.getloadavg()
    burners: list[multiprocessing.Process] = []
    stop = multiprocessing.Event()
    with tempfile.TemporaryDirectory(prefix="media_path-") as tmp, contextlib.ExitStack() as stack:
        rows = [open_row(n, Path(tmp) / n, stack) for n in names]
        time.sleep(1.0)
        for _ in range(args.burn):
            p = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
            p.start()
            burners.append(p)
        try:
            for r in range(args.rounds):
                for row in rows:
                    _log(f"round {r + 1}: {row.name}")
                    row.results.append(measure_once(row, args.seconds, not args.one_way))
        finally:
            stop.set()
            for p in burners:
                p.join(timeout=2)
    load_end = os.getloadavg()
    report = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "burn": args.burn,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "rows": {row.name: summarize(row) for row in rows},
    }
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    la0 = ", ".join(f"{x:.2f}" for x in report["loadavg_start"])
    la1 = ", ".join(f"{x:.2f}" for x in report["loadavg_end"])
    lines = [
        f"One-way audio delay, {report['rounds']} interleaved rounds of {report['seconds']} s "
        f"per row, {report['burn']} busy-loop processes beside; load average {la0} at start, "
        f"{la1} at end. Caller → callee and callee → caller in the same calls; *added* = "
        "minus the direct row of this run, same direction.",
        "",
        "| path | → p50 ms | → p99 ms | → added p50 | → added p99 | ← p50 ms | ← p99 ms | "
        "← added p50 | ← added p99 | bursts heard/sent → · ← | per round →p50/p99 ←p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in rows.items():
        cells = []
        for way in ("forward", "reverse"):
            d = r[way]["delay_ms"]
            base = rows.get("direct", {}).get(way, {}).get("delay_ms", {})
            cells += [_f(d.get("p50")), _f(d.get("p99"))]
            for q in ("p50", "p99"):
                if d.get(q) is None or base.get(q) is None or name == "direct":
                    cells.append("–")
                else:
                    cells.append(f"{d[q] - base[q]:+.2f}")
        per = " · ".join(
            f"{x['p50']:.1f}/{x['p99']:.1f} {_f(x.get('rev_p99'), 1)}"
            if x.get("p50") is not None
            else "error"
            for x in r["rounds"]
        )
        bursts = f"{r['forward']['bursts']} · {r['reverse']['bursts']}"
        lines.append(f"| {name} | {' | '.join(cells)} | {bursts} | {per} |")
    return "\n".join(lines)


def _f(v: Any, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


if __name__ == "__main__":
    raise SystemExit(main())
