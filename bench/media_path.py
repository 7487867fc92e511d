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
from bench.media_relay import ng
from bench.sipp import BenchError, media_ports, wait_sip_ready
from bench.targets import BENCH_NUMBER, REPO, write_dialplan
from bench.wire import summarize_ms
from switch.edge.rtpengine import MediaRelaySettings, command_line
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_process

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "uas_reinvite.xml"
WORKER_SIDE_FLAGS = "asymmetric strict-source"
ROWS = ("direct", "rtpengine", "worker", "bypass", "rtpengine_bypass")

KAMAILIO_RTP_CFG = """#!KAMAILIO
# Stateful record-routing proxy with rtpengine on every INVITE/reply/BYE: "rtpengine alone".
debug=1
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
loadmodule "textopsx.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{ng_port}")
modparam("tm", "fr_timer", 2000)
request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
		sl_send_reply("200", "OK");
		exit;
	}}
	if (has_totag()) {{
		if (loose_route() || is_method("ACK")) {{
			if (is_method("BYE")) rtpengine_delete();
			else if (has_body("application/sdp")) rtpengine_manage("{flags}");
			t_on_reply("MEDIA");
			t_relay();
		}}
		exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
	if (is_method("INVITE")) {{
		record_route();
		rtpengine_manage("{flags}");
		t_on_reply("MEDIA");
	}}
	$du = "sip:127.0.0.1:{dest_port}";
	t_relay();
}}
onreply_route[MEDIA] {{
	if (has_body("application/sdp")) rtpengine_manage("{flags}{reply_flags}");
}}
"""


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
def _rtpengine(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    ng_port = free_port()
    base = free_port(span=2, even=True)
    settings = MediaRelaySettings(
        mode="on",
        ng_listen=f"127.0.0.1:{ng_port}",
        delete_delay=0,
        port_min=max(1024, min(base, 64000)),
        port_max=max(1024, min(base, 64000)) + 998,
    )
    log = (workdir / "rtpengine.log").open("wb")
    proc = subprocess.Popen(command_line(settings, "127.0.0.1", None), stdout=log, stderr=log)
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
def _kamailio_rtp(
    workdir: Path, dest_port: int, reply_flags: str = ""
) -> Iterator[tuple[int, list[int]]]:
    workdir.mkdir(parents=True, exist_ok=True)
    with _rtpengine(workdir) as (ng_port, rtp):
        port = free_port()
        cfg = workdir / "kamailio.cfg"
        cfg.write_text(
            KAMAILIO_RTP_CFG.format(
                port=port,
                ng_port=ng_port,
                dest_port=dest_port,
                flags="replace-origin replace-session-connection",
                reply_flags=reply_flags,
            )
        )
        rundir = workdir / "run"
        rundir.mkdir(exist_ok=True)
        cmd = ["kamailio", "-DD", "-E", "-f", str(cfg), "-m", "256", "-M", "8", "-Y", str(rundir)]
        log = (workdir / "kamailio.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_sip_ready("127.0.0.1", port, proc)
            yield port, [proc.pid, rtp.pid]
        finally:
            stop_process(proc, grace=5)
            log.close()


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
        port, pids = stack.enter_context(_kamailio_rtp(workdir, uas_port))
        return PathRow(name, "127.0.0.1", port, "uas", rx, pids)
    bypass = ("--media-bypass",) if "bypass" in name else ()
    wport, wpid = stack.enter_context(_worker(workdir, uas_port, *bypass))
    if name == "rtpengine_bypass":
        # As the edge asks for the worker side (route[MEDIA]): the worker's SDP address
        # only, never latching onto pjsua's own port (its stream sends 600 ms of silence
        # whenever it starts: PJMEDIA_STREAM_VAD_SUSPEND_MSEC).
        flags = " " + WORKER_SIDE_FLAGS
        port, pids = stack.enter_context(_kamailio_rtp(workdir / "edge", wport, flags))
        return PathRow(name, "127.0.0.1", port, BENCH_NUMBER, rx, [wpid, *pids])
    return PathRow(name, "127.0.0.1", wport, BENCH_NUMBER, rx, [wpid])


def _burn(stop: Any) -> None:  # pragma: no cover - a child process
    while not stop.is_set():
        for _ in range(100_000):
            pass


def summarize(row: PathRow) -> dict[str, Any]:
    delays: list[float] = []
    sent = heard = streams = 0
    per_round = []
    for r in row.results:
        if "error" in r:
            per_round.append({"error": r["error"]})
            continue
        d = r["delay_ms"] or {}
        per_round.append({"p50": d.get("p50"), "p99": d.get("p99"), "lost": r["burst_loss"]})
        delays.extend(r["delays_s"])
        sent += r["bursts_sent"]
        heard += r["bursts_heard"]
        streams = max(streams, r["streams_received"])
    return {
        "delay_ms": summarize_ms(delays) or {},
        "bursts": f"{heard}/{sent}",
        "max_streams": streams,
        "rounds": per_round,
    }


def measure_once(row: PathRow, seconds: float) -> dict[str, Any]:
    try:
        return media.measure((row.host, row.port), row.rx, seconds, user=row.user)
    except BenchError as exc:
        return {"error": str(exc)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--burn", type=int, default=0, help="busy-loop processes beside")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--json", type=Path, default=None)
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
                    row.results.append(measure_once(row, args.seconds))
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
    base = rows.get("direct", {}).get("delay_ms", {})
    la0 = ", ".join(f"{x:.2f}" for x in report["loadavg_start"])
    la1 = ", ".join(f"{x:.2f}" for x in report["loadavg_end"])
    lines = [
        f"One-way audio delay, {report['rounds']} interleaved rounds of {report['seconds']} s "
        f"per row, {report['burn']} busy-loop processes beside; load average {la0} at start, "
        f"{la1} at end.",
        "",
        "| path | p50 ms | p99 ms | max ms | added p50 | added p99 | bursts heard/sent | "
        "RTP streams at callee | per round p50/p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in rows.items():
        d = r["delay_ms"]

        def added(q: str, d: dict[str, Any] = d, name: str = name) -> str:
            if d.get(q) is None or base.get(q) is None or name == "direct":
                return "–"
            return f"{d[q] - base[q]:+.2f}"

        per = " · ".join(
            f"{x['p50']:.1f}/{x['p99']:.1f}" if "p50" in x and x["p50"] is not None else "error"
            for x in r["rounds"]
        )
        lines.append(
            f"| {name} | {_f(d.get('p50'))} | {_f(d.get('p99'))} | {_f(d.get('max'))} | "
            f"{added('p50')} | {added('p99')} | {r['bursts']} | {r['max_streams']} | {per} |"
        )
    return "\n".join(lines)


def _f(v: Any) -> str:
    return "–" if v is None else f"{v:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
