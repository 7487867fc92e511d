"""One worker's call rate and signalling delay, beside SIPp→SIPp direct in the same run.

``python -m bench.worker_rate [--latency-calls 300] [--latency-rate 10] [--ladder 5,10,...]``

1. Latency: the same SIPp caller runs ``--latency-calls`` short calls straight to a SIPp
   callee, then through one worker (``python -m switch.worker`` with a control socketpair,
   as the supervisor starts it). A loopback capture gives wire delays (INVITE→180 at the
   caller, INVITE in→INVITE out at the callee); the worker's own call records give
   INVITE in→INVITE out and 180 in→180 relayed from its ``time.monotonic_ns`` stamps.
2. Rate: stepwise offered rates (``--ladder``), ``--step-seconds`` of calls each, 100 ms
   calls; the highest rate with zero failed calls and a live worker is the result. The
   ladder stops at the first failing step (the worker is then restarted for the record).

Prints a Markdown table and writes ``bench/results/worker_rate-<UTC>.json``. Every SIPp
run is bounded in calls and seconds; every process is stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import sipp, wire
from bench.targets import BENCH_NUMBER, write_dialplan
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_process

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


class ControlledWorker:
    """A worker process whose control channel (records, legs) is read into a list."""

    def __init__(self, workdir: Path, uas_port: int) -> None:
        self.port = free_port()
        plans = workdir / "dialplans"
        write_dialplan(plans, uas_port)
        self._ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-m", "switch.worker", "--sip", f"127.0.0.1:{self.port}"]
        cmd += ["--dialplans", str(plans), "--control-fd", str(theirs.fileno())]
        cmd += ["--log-level", "WARNING"]
        self.log_path = workdir / "worker.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, pass_fds=[theirs.fileno()]
            )
        theirs.close()
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 20
        while not any(m["op"] == "ready" for m in self.snapshot()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise sipp.BenchError(f"worker did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.05)

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._ours.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            with self._lock:
                self.messages.extend(json.loads(line) for line in lines if line)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def ended_records(self) -> list[dict[str, Any]]:
        return [m["record"] for m in self.snapshot() if m["op"] == "call" and m["phase"] == "ended"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        rc = stop_process(self.proc, grace=15)
        self._ours.close()
        return rc


@contextlib.contextmanager
def controlled_worker(workdir: Path, uas_port: int) -> Iterator[ControlledWorker]:
    worker = ControlledWorker(workdir, uas_port)
    try:
        yield worker
    finally:
        worker.stop()


def record_delays(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Worker-internal delays (ns stamps of one clock) in milliseconds, p50/p99."""

    def ms(pairs: list[tuple[int | None, int | None]]) -> dict[str, float | int] | None:
        values = [(b - a) / 1e9 for a, b in pairs if a is not None and b is not None]
        return wire.summarize_ms(values)

    return {
        "invite_in_to_decision": ms([(r["invite_in_ns"], r["decision_ns"]) for r in records]),
        "invite_in_to_invite_out": ms(
            [(r["invite_in_ns"], r["legs"][0]["invite_out_ns"]) for r in records if r["legs"]]
        ),
        "180_in_to_180_relayed": ms(
            [(r["first_18x_in_ns"], r["first_18x_relayed_ns"]) for r in records]
        ),
        "200_in_to_200_relayed": ms([(r["answer_in_ns"], r["answer_relayed_ns"]) for r in records]),
    }


def latency_row(
    workdir: Path, name: str, calls: int, rate: float, via_worker: bool
) -> dict[str, Any]:
    uas_port, uac_port = free_port(), free_port()
    media = sipp.media_ports()
    result: dict[str, Any] = {"row": name}
    with sipp.uas(workdir / name, port=uas_port, media_port=media, name="uas"):
        worker_cm: Any = (
            controlled_worker(workdir / name, uas_port)
            if via_worker
            else contextlib.nullcontext(None)
        )
        with worker_cm as worker:
            target_port = worker.port if worker else uas_port
            run, timings = wire.captured_uac(
                workdir / name, workdir / name / "sip.pcap", target=f"127.0.0.1:{target_port}",
                service=BENCH_NUMBER, uac_port=uac_port, uas_port=uas_port, calls=calls, rate=rate,
            )  # fmt: skip
            result["uac"] = run.as_dict()
            ms = wire.latencies_ms(timings)
            result["wire_invite_to_180"] = ms["ringing"]
            result["wire_invite_to_200"] = ms["answer"]
            result["wire_invite_in_to_invite_out"] = ms["forward"]
            if worker is not None:
                time.sleep(0.5)
                result["records"] = record_delays(worker.ended_records())
                result["worker_alive"] = worker.alive()
    return result


def rate_search(workdir: Path, ladder: list[int], step_seconds: float) -> dict[str, Any]:
    uas_port = free_port()
    steps: list[dict[str, Any]] = []
    best = 0
    with sipp.uas(workdir / "rate", port=uas_port, media_port=sipp.media_ports(), name="uas"):
        for rate in ladder:
            step_dir = workdir / "rate" / f"r{rate}"
            with controlled_worker(step_dir, uas_port) as worker:
                run = sipp.run_uac(
                    step_dir,
                    target=f"127.0.0.1:{worker.port}",
                    port=0,
                    calls=int(rate * step_seconds),
                    rate=rate,
                    hold_ms=100,
                    service=BENCH_NUMBER,
                )
                alive = worker.alive()
                cpu = _cpu_seconds(worker.proc.pid)
            step = {"rate": rate, **run.as_dict(), "worker_alive": alive, "worker_cpu_s": cpu}
            if not alive:
                step["worker_log_tail"] = (step_dir / "worker.log").read_text()[-600:]
            steps.append(step)
            print(f"  {rate:>4} calls/s: ok={run.ok} alive={alive}", flush=True)
            if not (run.ok and alive):
                break
            best = rate
    return {"best_zero_failure_cps": best, "steps": steps}


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / 100.0


def fmt(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "–"
    return f"{summary['p50']:.2f} / {summary['p99']:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_rate")
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--latency-rate", type=float, default=10.0)
    parser.add_argument("--ladder", default="5,10,15,20,25,30,35,40,50")
    parser.add_argument("--step-seconds", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path("/tmp") / f"worker_rate-{stamp}"
    rows = [
        latency_row(workdir, "direct", args.latency_calls, args.latency_rate, via_worker=False),
        latency_row(workdir, "worker", args.latency_calls, args.latency_rate, via_worker=True),
    ]
    print("rate search:", flush=True)
    rate = rate_search(workdir, [int(x) for x in args.ladder.split(",")], args.step_seconds)
    result = {"when": stamp, "latency": rows, "rate": rate}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"worker_rate-{stamp}.json").write_text(json.dumps(result, indent=2))

    direct, worker = rows
    rec = worker.get("records", {})
    print(f"\n{args.latency_calls} calls at {args.latency_rate:g}/s, 100 ms each (p50 / p99 ms)")
    print("| figure | SIPp→SIPp direct | SIPp→worker→SIPp |")
    print("| --- | --- | --- |")
    print(
        f"| wire INVITE→180 at caller | {fmt(direct['wire_invite_to_180'])} "
        f"| {fmt(worker['wire_invite_to_180'])} |"
    )
    print(
        f"| wire INVITE→200 at caller | {fmt(direct['wire_invite_to_200'])} "
        f"| {fmt(worker['wire_invite_to_200'])} |"
    )
    print(f"| wire INVITE in→INVITE out | – | {fmt(worker['wire_invite_in_to_invite_out'])} |")
    print(f"| record INVITE in→INVITE out | – | {fmt(rec.get('invite_in_to_invite_out'))} |")
    print(f"| record 180 in→180 relayed | – | {fmt(rec.get('180_in_to_180_relayed'))} |")
    print(f"| record 200 in→200 relayed | – | {fmt(rec.get('200_in_to_200_relayed'))} |")
    print(
        f"\nfailed calls: direct {direct['uac']['failed']}, worker {worker['uac']['failed']}; "
        f"highest zero-failure rate of one worker: {rate['best_zero_failure_cps']} calls/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
