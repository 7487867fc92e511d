"""Call records against a real SQLite file: round trip, batching, spool and replay, restarts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import aiosqlite
import pytest

from switch.errors import RecordsError
from switch.records.queries import RecordReader, month_bounds
from switch.records.schema import MIGRATIONS, SCHEMA_VERSION
from switch.records.writer import RecordWriter
from tests.helpers.records import make_record, same_call


def rows(db: Path, sql: str = "SELECT * FROM calls ORDER BY id") -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql))


async def test_round_trip_started_answered_ended(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    start = make_record(caller="+4917112345678")
    done = same_call(
        start,
        answer_in_ms=3000.0,
        answer_relayed_ms=3000.7,
        ended_ms=63000.7,
        outcome="answered",
        by_service=True,
        mos=4.2,
    )
    async with RecordWriter(db) as writer:
        writer.submit("started", start)
        await writer.flush()
        active = await writer.recent_calls()
        assert [c["active"] for c in active] == [True]
        assert active[0]["outcome"] is None
        writer.submit("ended", done)
        await writer.flush()
        calls = await writer.recent_calls()
    assert len(calls) == 1
    call = calls[0]
    assert call["call_id"] == start.call_id
    assert call["outcome"] == "answered"
    assert call["active"] is False
    assert call["caller"] == "+4917112345678"
    assert call["answered_by_service"] is True
    assert call["first_18x_relayed_ms"] == pytest.approx(40.6)
    assert call["answer_relayed_ms"] == pytest.approx(3000.7)
    assert call["ended_ms"] == pytest.approx(63000.7)
    assert call["started_at"].startswith("2026-10-26T")
    assert call["media"]["mos"] == pytest.approx(4.2)
    assert [leg["target"] for leg in call["legs"]] == ["heimbuero"]
    assert call["legs"][0]["invite_out_ms"] == pytest.approx(1.2)
    assert call["legs"][0]["is_service"] is True
    assert "phase_rank" not in call
    assert "phase_rank" not in call["legs"][0]
    # Only one row per call, one per leg: the phases completed the same row.
    assert len(rows(db)) == 1
    assert len(rows(db, "SELECT * FROM legs")) == 1
    assert rows(db, "PRAGMA journal_mode")[0][0] == "wal"


@pytest.mark.parametrize(
    ("policy", "stored"),
    [("full", "+4917112345678"), ("masked", "+491********78"), ("none", None)],
)
async def test_caller_is_stored_as_the_plan_allows(
    tmp_path: Path, policy: str, stored: str | None
) -> None:
    async with RecordWriter(tmp_path / "r.db") as writer:
        writer.submit("started", make_record(caller="+4917112345678"), store_caller=policy)
        await writer.flush()
    assert [r["caller"] for r in rows(tmp_path / "r.db")] == [stored]


async def test_a_later_phase_is_never_overwritten_by_an_earlier_one(tmp_path: Path) -> None:
    start = make_record()
    end = make_record(call_id=start.call_id, ended_ms=9000.0, outcome="missed")
    async with RecordWriter(tmp_path / "r.db") as writer:
        writer.submit("ended", end)
        writer.submit("started", start)  # e.g. replayed late from the spool
        await writer.flush()
        (call,) = await writer.recent_calls()
    assert call["outcome"] == "missed"


async def test_reports_submitted_together_are_written_in_one_batch(tmp_path: Path) -> None:
    async with RecordWriter(tmp_path / "r.db") as writer:
        await writer.flush()  # the start-up clean-up is a batch of its own
        before = writer.stats.batches
        for _ in range(120):  # no await in between: the writer sees them all at once
            writer.submit("started", make_record())
        await writer.flush()
        assert writer.stats.batches == before + 1
        assert writer.stats.batch_sizes[-1] == 120
        assert writer.stats.records_written == 120
    assert len(rows(tmp_path / "r.db")) == 120


async def test_submit_does_not_wait_for_a_locked_database(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    async with RecordWriter(db, busy_timeout=0.3, retry_interval=0.1) as writer:
        await writer.flush()
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for _ in range(50):
                writer.submit("started", make_record())
            assert loop.time() - t0 < 0.05
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()


async def test_locked_database_spools_and_replays_without_loss(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    first, second = make_record(), make_record()
    async with RecordWriter(db, busy_timeout=0.2, retry_interval=0.1) as writer:
        await writer.flush()
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            writer.submit("started", first)
            await writer.flush()
            assert writer.spool_pending
            assert writer.writable is False
            assert "locked" in (writer.stats.last_error or "")
            assert writer.stats.records_spooled == 1
            spooled = [json.loads(line) for line in writer.spool_path.read_text().splitlines()]
            assert [(s["phase"], s["record"]["call_id"]) for s in spooled] == [
                ("started", first.call_id)
            ]
            writer.submit("started", second)  # still locked: queued behind the spool
            await writer.flush()
            assert writer.stats.records_spooled == 2
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # The lock is gone: the idle retry replays the spool without a new record.
        for _ in range(50):
            if not writer.spool_pending:
                break
            await asyncio.sleep(0.05)
        assert not writer.spool_pending
        assert writer.writable is True
        assert writer.stats.records_replayed == 2
    assert sorted(r["call_id"] for r in rows(db)) == sorted([first.call_id, second.call_id])


async def test_full_disk_spools_and_the_next_batch_replays(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    connections: list[aiosqlite.Connection] = []

    async def capture(conn: aiosqlite.Connection) -> None:
        connections.append(conn)

    async with RecordWriter(db, on_connect=capture, retry_interval=30) as writer:
        await writer.flush()
        (conn,) = connections
        async with conn.execute("PRAGMA page_count") as cursor:
            pages = (await cursor.fetchone() or [0])[0]
        # Cap the file at its current size: the next insert fails with SQLITE_FULL.
        await conn.execute(f"PRAGMA max_page_count = {pages}")
        full = [make_record(caller="+49" + "1" * 12) for _ in range(40)]
        for record in full:
            writer.submit("started", record)
        await writer.flush()
        assert "full" in (writer.stats.last_error or "")
        assert writer.stats.records_spooled == 40
        assert rows(db) == []
        await conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
        later = make_record()
        writer.submit("started", later)  # the next batch replays the spool first
        await writer.flush()
        assert not writer.spool_pending
        assert writer.stats.records_replayed == 40
    stored = [r["call_id"] for r in rows(db)]
    assert stored == [r.call_id for r in full] + [later.call_id]


async def test_spool_left_by_a_crash_is_replayed_at_start(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    record = make_record(ended_ms=5000.0, outcome="missed")
    async with RecordWriter(db):
        pass
    spool = db.with_name(db.name + ".spool.jsonl")
    line = {"op": "call", "phase": "ended", "policy": "full", "record": record.to_dict()}
    spool.write_text(json.dumps(line) + "\n" + '{"op": "call", "phase": "end')  # torn last line
    async with RecordWriter(db) as writer:
        assert not writer.spool_pending
        assert writer.stats.records_replayed == 1
    assert [(r["call_id"], r["outcome"]) for r in rows(db)] == [(record.call_id, "missed")]


async def test_calls_left_active_are_closed_as_aborted_at_restart(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    ringing = make_record(started_wall=1_793_000_000.0)
    talking = make_record(started_wall=1_793_000_010.0, answer_in_ms=2000, answer_relayed_ms=2001)
    finished = make_record(ended_ms=1000.0, outcome="cancelled")
    async with RecordWriter(db) as writer:
        writer.submit("started", ringing)
        writer.submit("answered", talking)
        writer.submit("ended", finished)
        await writer.flush()
    # The process dies here; the next run starts.
    async with RecordWriter(db, clock=lambda: 1_793_000_100.0) as writer:
        await writer.flush()
        calls = {c["call_id"]: c for c in await writer.recent_calls()}
    assert calls[ringing.call_id]["outcome"] == "aborted"
    assert calls[ringing.call_id]["hung_up_by"] == "switch"
    assert calls[ringing.call_id]["ended_ms"] == pytest.approx(100_000.0)
    assert calls[talking.call_id]["outcome"] == "aborted"
    assert calls[finished.call_id]["outcome"] == "cancelled"


async def test_close_aborted_closes_only_the_dead_workers_calls(tmp_path: Path) -> None:
    async with RecordWriter(tmp_path / "r.db") as writer:
        mine, other = make_record(worker="w1"), make_record(worker="w2")
        writer.submit("started", mine)
        writer.submit("started", other)
        assert await writer.close_aborted("w1") == 1  # ordered after the two reports
        calls = {c["call_id"]: c for c in await writer.recent_calls()}
        assert calls[mine.call_id]["outcome"] == "aborted"
        assert calls[other.call_id]["active"] is True
        # The real end, if it still arrives, wins over the guess.
        writer.submit("ended", make_record(call_id=mine.call_id, ended_ms=800, outcome="missed"))
        await writer.flush()
        calls = {c["call_id"]: c for c in await writer.recent_calls()}
        assert calls[mine.call_id]["outcome"] == "missed"


async def test_migrations_from_version_0_and_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    async with RecordWriter(empty):
        pass
    assert rows(empty, "PRAGMA user_version")[0][0] == SCHEMA_VERSION

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:  # a database written by schema version 1
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO calls (call_id, started_wall, started_at, called, caller_policy, worker,"
            " phase, phase_rank, outcome, updated_wall) VALUES ('old@x', 1.0, '1970', '+49', "
            "'full', 'w1', 'ended', 2, 'answered', 1.0)"
        )
    async with RecordReader(old) as reader:
        (call,) = await reader.recent_calls()
    assert call["call_id"] == "old@x"
    assert rows(old, "PRAGMA user_version")[0][0] == SCHEMA_VERSION
    indexes = {r[0] for r in rows(old, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"calls_started", "calls_tenant_started", "calls_active"} <= indexes


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RecordsError, match="newer than this program"):
        async with RecordWriter(db):
            pass


async def test_recent_calls_filters_and_monthly_usage(tmp_path: Path) -> None:
    nov, _ = month_bounds("2026-11")
    async with RecordWriter(tmp_path / "r.db") as writer:
        for i in range(5):
            writer.submit(
                "ended",
                make_record(
                    tenant="tischlerei" if i % 2 == 0 else "elektro",
                    started_wall=nov + 3600 * i,
                    answer_in_ms=2000,
                    answer_relayed_ms=2000.5,
                    ended_ms=2000.5 + 60_000 * (i + 1),
                    outcome="answered",
                    by_service=i < 3,
                ),
            )
        writer.submit("ended", make_record(started_wall=nov - 10, outcome="missed", ended_ms=9))
        await writer.flush()
        mine = await writer.recent_calls(tenant="tischlerei", since=nov, limit=10)
        assert [c["started_wall"] for c in mine] == [nov + 4 * 3600, nov + 2 * 3600, nov]
        assert len(await writer.recent_calls(limit=2)) == 2
        assert len(await writer.recent_calls(until=nov)) == 1
        usage = {u.tenant: u for u in await writer.monthly_usage("2026-11")}
    assert usage["tischlerei"].calls == 3
    assert usage["tischlerei"].answered_by_service == 2  # i = 0 and 2
    assert usage["tischlerei"].service_minutes == pytest.approx(1 + 3)
    assert usage["elektro"].calls == 2
    assert usage["elektro"].service_minutes == pytest.approx(2)


def test_month_bounds_rejects_bad_months() -> None:
    assert month_bounds("2026-12")[1] == month_bounds("2027-01")[0]
    with pytest.raises(ValueError, match="'2026-13' is not YYYY-MM"):
        month_bounds("2026-13")


async def test_a_poison_report_is_set_aside_and_the_batch_still_written(tmp_path: Path) -> None:
    good, bad, also_good = make_record(), make_record(), make_record()
    bad.called = None  # type: ignore[assignment]  # a worker bug: NOT NULL column
    async with RecordWriter(tmp_path / "r.db") as writer:
        await writer.flush()
        for record in (good, bad, also_good):
            writer.submit("started", record)
        await writer.flush()
        assert writer.stats.records_rejected == 1
        assert not writer.spool_pending
        (rejected,) = writer.rejected_path.read_text().splitlines()
        assert json.loads(rejected)["record"]["call_id"] == bad.call_id
        assert "NOT NULL" in json.loads(rejected)["error"]
    assert sorted(r["call_id"] for r in rows(tmp_path / "r.db")) == sorted(
        [good.call_id, also_good.call_id]
    )


async def test_a_report_after_stop_is_spooled_for_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    late = make_record(ended_ms=10.0, outcome="cancelled")
    writer = RecordWriter(db)
    async with writer:
        pass
    writer.submit("ended", late)  # e.g. a worker's last report during shutdown
    assert writer.spool_pending
    async with RecordWriter(db) as again:
        assert again.stats.records_replayed == 1
    assert [r["outcome"] for r in rows(db)] == ["cancelled"]


async def test_legs_follow_the_latest_report(tmp_path: Path) -> None:
    start = make_record()
    end = make_record(call_id=start.call_id, ended_ms=30_000.0, outcome="missed")
    end.legs[0].status = 408
    second = replace(end.legs[0], leg=2, target="jan.mobile", step=1, status=486, reason="Busy")
    end.legs.append(second)
    async with RecordWriter(tmp_path / "r.db") as writer:
        writer.submit("started", start)
        writer.submit("ended", end)
        writer.submit("started", start)  # late duplicate: must not undo the legs' end
        await writer.flush()
        (call,) = await writer.recent_calls()
    assert [(leg["leg"], leg["target"], leg["status"]) for leg in call["legs"]] == [
        (1, "jan.desk", 408),
        (2, "jan.mobile", 486),
    ]


async def test_a_full_queue_spools_instead_of_waiting_or_dropping(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    records = [make_record() for _ in range(30)]
    async with RecordWriter(db, queue_size=5) as writer:
        await writer.flush()
        for record in records:  # a burst larger than the queue, with no await between
            writer.submit("started", record)
        assert writer.stats.records_spooled == 25
        await writer.flush()
        assert not writer.spool_pending
        assert writer.stats.records_replayed == 25
    assert sorted(r["call_id"] for r in rows(db)) == sorted(r.call_id for r in records)


async def test_records_durability_is_on_the_metrics(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from switch.metrics import Metrics

    metrics = Metrics()
    async with RecordWriter(tmp_path / "r.db", backlog_max=7, reserve_bytes=4096) as writer:
        metrics.watch_records(writer.health)
        text = generate_latest(metrics.registry).decode()
        assert "rufweiche_records_durable 1.0" in text
        assert "rufweiche_records_backlog 0.0" in text
        assert "rufweiche_records_backlog_max 7.0" in text
        assert "rufweiche_records_reserve_bytes 4096.0" in text
        assert "rufweiche_records_lost_total 0.0" in text
        assert writer.health()["state"] == "durable"
        assert (tmp_path / "r.db.reserve").stat().st_size == 4096


async def test_the_switchs_own_refusal_keeps_its_reason(tmp_path: Path) -> None:
    """Issue 15: a call refused for want of encryption says so in the record (migration 10)."""
    refused = replace(
        make_record(outcome="rejected"),
        sip_status=488,
        reason="Encryption required: TLS and SRTP",
        legs=[],
    )
    async with RecordWriter(tmp_path / "r.db") as writer:
        writer.submit("ended", refused)
        writer.submit("ended", make_record(call_id="other", outcome="answered"))
        await writer.flush()
        calls = {c["call_id"]: c for c in await writer.recent_calls()}
    assert calls[refused.call_id]["reason"] == "Encryption required: TLS and SRTP"
    assert calls[refused.call_id]["sip_status"] == 488
    assert calls["other"]["reason"] is None
