"""Issue 14, item 9: the ``retention:`` settings, enforced by the running switch.

Against real files and rows: a data directory written by the switch's own writer and
voicemail box, then :class:`Retention` (one pass, and its daily loop with a short
interval), then the rows counted with sqlite3 and the files looked for.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from switch.access.audit import AuditLog
from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from switch.supervisor.retention import Retention
from switch.supervisor.settings import RetentionSettings, Settings
from switch.supervisor.voicemail import VoicemailBox
from switch.worker.announcements import write_tone
from tests.helpers.records import make_record

DAY = 86400.0
NOW = time.time()


async def fill(data_dir: Path) -> dict[str, Path]:
    """Calls of two businesses, 10 and 100 days old, one still in progress (200 days);
    a voicemail and a dictation each 10 and 40 days old."""
    async with RecordWriter(data_dir / RECORDS_FILE) as writer:
        for tenant in ("tischlerei", "mueller"):
            for age in (10, 100):
                record = make_record(
                    tenant=tenant, started_wall=NOW - age * DAY, outcome="missed", ended_ms=900
                )
                writer.submit("ended", record)
        writer.submit("started", make_record(tenant="tischlerei", started_wall=NOW - 200 * DAY))
        await writer.flush()
    files: dict[str, Path] = {}
    async with VoicemailBox(data_dir / RECORDS_FILE) as box:
        for kind in ("voicemail", "dictation"):
            for age in (10, 40):
                name = f"{kind}{age}"
                wav = write_tone(data_dir / kind / "tischlerei" / f"{name}.wav")
                files[name] = wav
                await box.add(
                    {
                        "kind": kind,
                        "person": "jan" if kind == "dictation" else None,
                        "tenant": "tischlerei",
                        "call_id": name,
                        "caller": "+4917112345678",
                        "called": "+49301234567",
                        "seconds": 2.0,
                        "path": str(wav),
                        "started_wall": NOW - age * DAY,
                    },
                    "full",
                )
    return files


def count(data_dir: Path, sql: str) -> int:
    with sqlite3.connect(data_dir / RECORDS_FILE) as db:
        return int(db.execute(sql).fetchone()[0])


def test_the_settings_key() -> None:
    settings = Settings.model_validate(
        {"retention": {"calls": "90d", "voicemail": "30d", "dictation": "4w", "audit": "365d"}}
    )
    assert settings.retention.dictation == "4w"
    assert Settings().retention.calls == "90d"  # the default keeps calls for 90 days


async def test_one_pass_deletes_what_is_older_logs_and_audits(tmp_path: Path) -> None:
    files = await fill(tmp_path)
    audit = AuditLog(tmp_path / "audit.jsonl")
    old_line = '{"at":"2020-01-01T00:00:00.000Z","event":"login","who":"x"}\n'
    (tmp_path / "audit.jsonl").write_text(old_line)
    settings = RetentionSettings(calls="90d", voicemail="30d", dictation="30d", audit="365d")
    counts = await Retention(settings, tmp_path, audit).enforce()
    assert counts == {"calls": 2, "voicemails": 1, "dictations": 1, "files": 2, "audit": 1}
    assert count(tmp_path, "SELECT COUNT(*) FROM calls") == 3  # 2 recent + 1 in progress
    assert count(tmp_path, "SELECT COUNT(*) FROM calls WHERE outcome IS NULL") == 1
    assert not files["voicemail40"].exists()
    assert not files["dictation40"].exists()
    assert files["voicemail10"].exists()
    assert files["dictation10"].exists()
    events = audit.read()
    assert [e["event"] for e in events] == ["retention"]  # the 2020 line is gone
    assert events[0]["ok"] is True
    assert events[0]["deleted"]["calls"] == 2


async def test_a_business_can_keep_its_calls_shorter(tmp_path: Path) -> None:
    await fill(tmp_path)
    settings = RetentionSettings.model_validate(
        {
            "calls": None,
            "voicemail": None,
            "dictation": None,
            "tenants": {"mueller": {"calls": "7d"}},
        }
    )
    counts = await Retention(settings, tmp_path).enforce()
    assert counts["calls"] == 2  # both of mueller's; tischlerei keeps all (calls: null)
    assert count(tmp_path, "SELECT COUNT(*) FROM calls WHERE tenant = 'mueller'") == 0
    assert count(tmp_path, "SELECT COUNT(*) FROM calls WHERE tenant = 'tischlerei'") == 3
    assert count(tmp_path, "SELECT COUNT(*) FROM voicemails") == 4


async def test_the_task_runs_at_start_and_then_every_interval(tmp_path: Path) -> None:
    await fill(tmp_path)
    audit = AuditLog(tmp_path / "audit.jsonl")
    interval_h = 0.2 / 3600  # 0.2 s
    retention = Retention(RetentionSettings(interval_hours=interval_h), tmp_path, audit)
    stopping = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(retention.run(stopping))
        async with asyncio.timeout(5):
            while retention.passes < 3:  # noqa: ASYNC110 (polls a counter)
                await asyncio.sleep(0.05)
        stopping.set()  # the task ends with the switch
    assert count(tmp_path, "SELECT COUNT(*) FROM calls") == 3
    assert [e["event"] for e in audit.read()].count("retention") >= 3
    assert retention.last is not None
    assert retention.last["calls"] == 0  # the later passes found nothing more


async def test_a_failing_pass_is_audited_and_does_not_stop_the_task(tmp_path: Path) -> None:
    (tmp_path / RECORDS_FILE).write_text("not a database")
    audit = AuditLog(tmp_path / "audit.jsonl")
    retention = Retention(RetentionSettings(interval_hours=1), tmp_path, audit)
    stopping = asyncio.Event()
    task = asyncio.create_task(retention.run(stopping))
    async with asyncio.timeout(5):
        while not audit.read():  # noqa: ASYNC110 (polls a file)
            await asyncio.sleep(0.02)
    stopping.set()
    await asyncio.wait_for(task, 2)
    (event,) = audit.read()
    assert event["event"] == "retention"
    assert event["ok"] is False


@pytest.mark.peer
@pytest.mark.slow
async def test_the_running_switch_enforces_retention_at_start(
    tmp_path: Path, make_switch: Any
) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    files = await fill(data_dir)
    plans = tmp_path / "plans"
    plans.mkdir()
    source = Path(__file__).parents[3] / "dialplans" / "tischlerei-mueller.yaml"
    (plans / "mueller.yaml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    # The default settings: calls 90d, voicemail and dictation 30d.
    switch = await asyncio.to_thread(make_switch, plans)
    audit = AuditLog(data_dir / "audit.jsonl")
    events = await asyncio.to_thread(
        switch.wait_until,
        lambda: [e for e in audit.read() if e["event"] == "retention"],
        10,
        "a retention pass",
    )
    assert events[0]["ok"] is True
    # The call left "in progress" by the earlier writer was closed as aborted at start,
    # so it is old and finished now: 2 + 1.
    assert events[0]["deleted"]["calls"] == 3
    cutoff = NOW - 90 * DAY
    assert count(data_dir, f"SELECT COUNT(*) FROM calls WHERE started_wall < {cutoff}") == 0
    assert not files["voicemail40"].exists()
    assert files["voicemail10"].exists()
    assert "retention: deleted calls 3" in switch.output()
