"""What call records, metrics and the dashboard feed add to the call path.

``python -m bench.recording_overhead [--calls 300] [--rate 10] [--rounds 2]``

The same SIPp run (short calls to one SIPp callee), in alternating rounds:

* ``worker``: a bare worker whose control channel is only read into a list — the
  least a worker can do with its call reports;
* ``switch``: ``rufweiche run`` — the supervisor writes every report to SQLite, feeds the
  Prometheus metrics and the dashboard's live feed, and replicates presence.

Both are timed on the wire (a loopback capture: INVITE→180 and INVITE→200 at the caller,
INVITE in→INVITE out at the callee). The records and metrics live in the supervisor
process, so the difference is what the worker pays to hand its reports over plus what
the supervisor's CPU takes from the machine. Prints a Markdown table and writes
``bench/results/recording_overhead-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import sipp, wire
from bench.targets import BENCH_NUMBER, write_dialplan
from bench.worker_rate import controlled_worker, fmt
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_process

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


@contextlib.contextmanager
def running_switch(workdir: Path, uas_port: int) -> Iterator[int]:
    """``rufweiche run`` with one worker on a free port; yields the SIP port."""
    plans = workdir / "dialplans"
    write_dialplan(plans, uas_port)
    sip, http = free_port(), free_port(udp=False, tcp=True)
    cmd = [sys.executable, "-m", "switch", "run", "--dialplans", str(plans)]
    cmd += ["--sip", f"127.0.0.1:{sip}", "--http", f"127.0.0.1:{http}"]
    cmd += ["--data-dir", str(workdir / "var"), "--no-mqtt", "--log-level", "warning"]
    cmd += ["--edge-mode", "off"]  # a bare worker: this bench measures the worker alone
    log = (workdir / "switch.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise sipp.BenchError("rufweiche run did not become ready") from None
                time.sleep(0.1)
        yield sip
    finally:
        stop_process(proc, grace=15)
        log.close()


def row(workdir: Path, name: str, calls: int, rate: float) -> dict[str, Any]:
    uas_port, uac_port = free_port(), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    with sipp.uas(workdir, port=uas_port, media_port=sipp.media_ports(), name="uas"):
        target: Any = (
            running_switch(workdir, uas_port)
            if name == "switch"
            else controlled_worker(workdir, uas_port)
        )
        with target as running:
            port = running if isinstance(running, int) else running.port
            run, timings = wire.captured_uac(
                workdir, workdir / "sip.pcap", target=f"127.0.0.1:{port}", service=BENCH_NUMBER,
                uac_port=uac_port, uas_port=uas_port, calls=calls, rate=rate,
            )  # fmt: skip
    ms = wire.latencies_ms(timings)
    return {"row": name, "uac": run.as_dict(), "invite_to_180": ms["ringing"],
            "invite_to_200": ms["answer"], "invite_in_to_out": ms["forward"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recording_overhead")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rufweiche-overhead-") as tmp:
        for round_no in range(args.rounds):
            for name in ("worker", "switch"):  # alternate, so drift hits both alike
                print(f"round {round_no + 1}: {name} ...", flush=True)
                rows.append(row(Path(tmp) / f"{name}{round_no}", name, args.calls, args.rate))
    print()
    print("| row | calls ok | INVITE→180 p50/p99 ms | INVITE→200 p50/p99 ms | in→out p50/p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        ok = r["uac"].get("successful")
        print(
            f"| {r['row']} | {ok} | {fmt(r['invite_to_180'])} | {fmt(r['invite_to_200'])}"
            f" | {fmt(r['invite_in_to_out'])} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"recording_overhead-{stamp}.json"
    path.write_text(json.dumps({"calls": args.calls, "rate": args.rate, "rows": rows}, indent=1))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
