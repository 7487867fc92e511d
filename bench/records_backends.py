"""Call records into PostgreSQL vs SQLite, measured in the same run.

``python -m bench.records_backends [--calls 2000] [--rounds 2] [--rate 300] [--dsn DSN]``

For each backend (a SQLite file in a temporary directory; a fresh schema on the
PostgreSQL at ``--dsn``, dropped afterwards), in alternating rounds:

* **throughput**: ``--calls`` calls of three reports each (started, answered, ended)
  submitted as fast as the loop can, then ``flush()``: records written per second, from the
  first submit until the last batch is committed;
* **call-path delay**: calls submitted at ``--rate`` calls per second (three reports each)
  while a ticker task measures how late the supervisor's event loop runs it (what a worker's
  next message or a SIP timer would wait), plus the time one ``submit()`` takes — the only
  thing the call path does with a record. Both must not differ between the backends: the
  writing is batched off the call path.

Prints a Markdown table, the two backends side by side, and writes
``bench/results/records_backends-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switch.call.calllog import CallRecord, LegRecord
from switch.records.writer import RecordWriter

RESULTS = Path(__file__).resolve().parent / "results"
DSN = "postgresql://postgres@127.0.0.1:5432/test"


def sample(n: int, started_wall: float) -> list[tuple[str, CallRecord]]:
    """The three reports of call ``n`` (synthetic, shaped as a worker sends them)."""
    base = 5_000_000_000_000
    leg = LegRecord(
        leg=1,
        target="heimbuero",
        uri="sip:201@127.0.0.1:5090",
        owner="service",
        is_service=True,
        step=0,
        invite_out_ns=base + 1_200_000,
        first_18x_in_ns=base + 40_000_000,
    )
    start = CallRecord(
        call_id=f"bench-{os.getpid()}-{n}@127.0.0.1",
        tenant="tischlerei",
        called="+49301234567",
        caller="+4917112345678",
        rule="weekday",
        worker="w1",
        started_wall=started_wall + n * 0.001,
        invite_in_ns=base,
        decision_ns=base + 50_000,
        first_18x_in_ns=base + 40_000_000,
        first_18x_relayed_ns=base + 40_600_000,
        legs=[leg],
    )
    answered = replace(
        start,
        answer_in_ns=base + 2_000_000_000,
        answer_relayed_ns=base + 2_000_400_000,
        answered_by="heimbuero",
        answered_by_service=True,
        sip_status=200,
        legs=[replace(leg, answered_ns=base + 2_000_000_000, status=200)],
    )
    ended = replace(
        answered, ended_ns=base + 62_000_000_000, outcome="answered", hung_up_by="caller"
    )
    return [("started", start), ("answered", answered), ("ended", ended)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else 0.0


async def throughput(writer: RecordWriter, calls: int, base: int) -> float:
    reports = [r for n in range(calls) for r in sample(base + n, 1_793_000_000.0)]
    start = time.perf_counter()
    for phase, record in reports:
        writer.submit(phase, record)
    await writer.flush()
    return len(reports) / (time.perf_counter() - start)


async def call_path(writer: RecordWriter, calls: int, rate: float, base: int) -> dict[str, float]:
    """Loop lag (ms) seen by a 1 ms ticker and submit() time (µs) at ``rate`` calls/s."""
    lags: list[float] = []
    submits: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - before - 0.001) * 1000)

    tick = asyncio.create_task(ticker())
    interval = 1 / rate
    begin = time.perf_counter()
    for n in range(calls):
        for phase, record in sample(base + n, 1_794_000_000.0):
            t0 = time.perf_counter_ns()
            writer.submit(phase, record)
            submits.append((time.perf_counter_ns() - t0) / 1000)
        delay = begin + (n + 1) * interval - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    await writer.flush()
    done.set()
    await tick
    return {
        "lag_p50_ms": statistics.median(lags),
        "lag_p99_ms": pct(lags, 0.99),
        "lag_max_ms": max(lags),
        "submit_p50_us": statistics.median(submits),
        "submit_p99_us": pct(submits, 0.99),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from switch.records.postgres import PgRecordWriter

    schema = f"rw_bench_{os.getpid()}"
    results: dict[str, dict[str, list[float]]] = {"sqlite": {}, "postgresql": {}}
    with tempfile.TemporaryDirectory(prefix="rw-bench-") as tmp:
        writers: dict[str, RecordWriter] = {
            "sqlite": RecordWriter(Path(tmp) / "calls.sqlite3"),
            "postgresql": PgRecordWriter(
                args.dsn, schema=schema, node="bench", spool_path=Path(tmp) / "calls.postgresql"
            ),
        }
        try:
            for w in writers.values():
                await w.__aenter__()
            base = 0
            for _ in range(args.rounds):
                for name, writer in writers.items():
                    base += args.calls * 2
                    row = results[name]
                    row.setdefault("records_per_s", []).append(
                        await throughput(writer, args.calls, base)
                    )
                    paced = await call_path(writer, args.paced_calls, args.rate, base + args.calls)
                    for key, value in paced.items():
                        row.setdefault(key, []).append(value)
                    row.setdefault("spooled", []).append(float(writer.stats.records_spooled))
        finally:
            for w in writers.values():
                await w.__aexit__(None, None, None)
            conn = await asyncpg.connect(args.dsn)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
    return {
        name: {key: statistics.median(values) for key, values in row.items()}
        for name, row in results.items()
    }


FIGURES = (
    ("records_per_s", "records written per second (burst)", "{:.0f}"),
    ("submit_p50_us", "submit() p50, µs (the call path)", "{:.1f}"),
    ("submit_p99_us", "submit() p99, µs", "{:.1f}"),
    ("lag_p50_ms", "event-loop lag p50, ms (paced)", "{:.3f}"),
    ("lag_p99_ms", "event-loop lag p99, ms", "{:.3f}"),
    ("lag_max_ms", "event-loop lag max, ms", "{:.2f}"),
    ("spooled", "records spooled", "{:.0f}"),
)


def table(figures: dict[str, dict[str, float]]) -> str:
    lines = ["| figure | SQLite | PostgreSQL |", "|---|---:|---:|"]
    for key, title, fmt in FIGURES:
        lite, pg = figures["sqlite"][key], figures["postgresql"][key]
        lines.append(f"| {title} | {fmt.format(lite)} | {fmt.format(pg)} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.records_backends")
    parser.add_argument("--calls", type=int, default=2000, help="calls per burst")
    parser.add_argument("--paced-calls", type=int, default=600, help="calls per paced run")
    parser.add_argument("--rate", type=float, default=300.0, help="paced calls per second")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dsn", default=os.environ.get("RUFWEICHE_TEST_PG", DSN))
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    try:
        figures = asyncio.run(measure(args))
    except OSError as exc:
        print(f"records_backends: no PostgreSQL at {args.dsn}: {exc}")
        return 1
    print(
        f"{args.calls} calls x 3 reports per burst, {args.paced_calls} calls at "
        f"{args.rate:g}/s paced, median of {args.rounds} alternating rounds"
    )
    print(table(figures))
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = RESULTS / f"records_backends-{stamp}.json"
        out.write_text(json.dumps({"args": vars(args), "figures": figures}, indent=2) + "\n")
        print(f"written {out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
