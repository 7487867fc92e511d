"""Callers waiting in a queue: what they cost the machine (issue 19).

``python -m bench.queue_wait [--callers 10] [--workers 5] [--seconds 30]``

``rufweiche run`` with ``--workers`` workers behind the edge and one queue whose only
member is paused, so every caller waits and hears the position announcement and the music
for ``--seconds``. A waiting caller holds two of a worker's four pjsua legs (its own and
the one reserved for the member), so ``--callers`` must be at most twice ``--workers``.
SIPp places the calls (``uac_queue_hangup.xml``, each hangs up after ``--seconds``); all
their SDPs name one test-owned UDP socket, which counts the RTP that reaches the callers
and its level.

Figures, side by side with a baseline measured in the same run (the same switch idle for
the same time): CPU seconds of the switch's whole process tree (supervisor, workers,
Kamailio, rtpengine) per wall second, its summed PSS, and the audio received. Prints a
Markdown table and writes ``bench/results/queue_wait-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procfs import TICK, cpu_ticks, descendants, pss_kb
from switch.call.prompts import queue_texts
from tests.helpers.ports import LOOPBACK
from tests.helpers.rtp import RtpSink, rms
from tests.helpers.sipp import BUSINESS, caller
from tests.helpers.switch import Switch
from tests.helpers.worker import make_prompts

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_ticks(pid) for pid in pids) / TICK


def pss_mb(pids: list[int]) -> float:
    return sum(pss_kb(pid) for pid in pids) / 1024


def measure(pid: int, seconds: float) -> dict[str, float]:
    pids = descendants(pid)
    start_cpu, start = cpu_seconds(pids), time.monotonic()
    peak = pss_mb(pids)
    while time.monotonic() - start < seconds:
        time.sleep(1.0)
        peak = max(peak, pss_mb(descendants(pid)))
    pids = descendants(pid)
    wall = time.monotonic() - start
    return {
        "cpu_per_s": (cpu_seconds(pids) - start_cpu) / wall,
        "pss_mb_peak": peak,
        "processes": len(pids),
    }


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def run(callers: int, workers: int, seconds: float, workdir: Path) -> dict[str, Any]:
    if callers > 2 * workers:
        raise SystemExit(f"{callers} callers need at least {(callers + 1) // 2} workers")
    plans = workdir / "plans"
    plans.mkdir()
    (plans / "t.yaml").write_text(
        f'tenant: bench\nname: Bench\nnumbers: ["{BUSINESS}"]\n'
        "rules:\n  - name: q\n    then: [{queue: hb}, voicemail]\n"
    )
    settings = workdir / "settings.yaml"
    settings.write_text(
        f"workers: {workers}\nlog_level: WARNING\nqueues:\n  hb:\n    max_length: {callers}\n"
        f"    max_wait: {int(seconds) + 60}\n"
        f'    members:\n      anna: {{uri: "sip:anna@{LOOPBACK}:9"}}\n'
    )
    make_prompts(workdir / "var", *queue_texts())
    switch = Switch(workdir, plans, "--settings", str(settings)).start()
    sink = RtpSink()
    try:
        switch.wait_until(lambda: switch.health()["workers_up"] == workers, 60, "workers")
        post(switch.url + "/api/v1/queues/hb/members/anna", {"action": "pause"})
        time.sleep(2)
        assert switch.proc is not None
        baseline = measure(switch.proc.pid, seconds)
        load = caller(
            workdir,
            switch.sip_port,
            "uac_queue_hangup.xml",
            name="load",
            calls=callers,
            rate=5.0,
            hold_ms=int(seconds * 1000),
            rtp_port=sink.port,
            timeout=seconds + 60,
            timeout_error=False,
        ).start()
        time.sleep(callers / 5 + 1)
        waiting = len(switch.get("/api/v1/queues")["queues"]["hb"]["waiting"])
        packets_before = len(sink.packets)
        queued = measure(switch.proc.pid, seconds - callers / 5 - 2)
        packets = len(sink.packets) - packets_before
        load.wait(seconds + 60)
        stats = load.totals()
        level = rms(sink.samples()[-8000 * 10 :])
        figures = switch.get("/api/v1/queues")["queues"]["hb"]["figures"]["by_tenant"]
    finally:
        sink.close()
        switch.stop()
    span = seconds - callers / 5 - 2
    return {
        "callers": callers,
        "workers": workers,
        "seconds": seconds,
        "waiting_seen": waiting,
        "sipp": stats,
        "baseline_idle": baseline,
        "queued": queued,
        "rtp_packets_per_caller_per_s": packets / max(1, waiting) / span,
        "audio_rms_last_10s": level,
        "queue_figures": figures,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_wait")
    parser.add_argument("--callers", type=int, default=10)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        report = run(args.callers, args.workers, args.seconds, Path(tmp))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"queue_wait-{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    b, q = report["baseline_idle"], report["queued"]
    print(f"{report['waiting_seen']} of {args.callers} callers waiting, {args.workers} workers")
    print("| | idle (baseline) | callers waiting |")
    print("|---|---|---|")
    print(f"| CPU, cores | {b['cpu_per_s']:.3f} | {q['cpu_per_s']:.3f} |")
    print(f"| PSS, MB (peak) | {b['pss_mb_peak']:.0f} | {q['pss_mb_peak']:.0f} |")
    print(f"| RTP packets per caller per s | - | {report['rtp_packets_per_caller_per_s']:.1f} |")
    print(f"| audio level (rms, last 10 s) | - | {report['audio_rms_last_10s']:.0f} |")
    print(f"sipp: {report['sipp']}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
