"""``rufweiche privacy export|delete|purge`` on a data directory the switch's own code wrote."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from presence.store import SCHEMA as PRESENCE_SCHEMA
from switch.cli import main
from switch.errors import PrivacyError
from switch.records.privacy import Subject, parse_age
from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from switch.supervisor.voicemail import VoicemailBox
from switch.worker.announcements import write_tone
from tests.helpers.records import make_record

CALLER = "+4917112345678"
OTHER = "+4917199999999"


async def fill(data_dir: Path) -> Path:
    now = time.time()
    wav = write_tone(data_dir / "voicemail" / "tischlerei" / "m1.wav")
    old_wav = write_tone(data_dir / "voicemail" / "tischlerei" / "old.wav")
    async with RecordWriter(data_dir / RECORDS_FILE) as writer:
        for caller, started, outcome in (
            (CALLER, now - 60, "answered"),
            (OTHER, now - 60, "missed"),
            (OTHER, now - 200 * 86400, "missed"),
        ):
            record = make_record(caller=caller, started_wall=started, outcome=outcome, ended_ms=900)
            writer.submit("ended", record)
        await writer.flush()
    async with VoicemailBox(data_dir / RECORDS_FILE) as box:
        base = {"tenant": "tischlerei", "called": "+49301234567", "seconds": 3.0}
        await box.add(
            {**base, "call_id": "a", "caller": CALLER, "path": str(wav), "started_wall": now - 50},
            "full",
        )
        await box.add(
            {
                **base,
                "call_id": "b",
                "caller": OTHER,
                "path": str(old_wav),
                "started_wall": now - 200 * 86400,
            },
            "full",
        )
    with sqlite3.connect(data_dir / "presence.sqlite3") as db:
        db.executescript(PRESENCE_SCHEMA)
        db.execute(
            "INSERT INTO presence (tenant, person, state, source, since) VALUES (?, ?, ?, ?, ?)",
            ("tischlerei", "jan", "available", "phone", "2026-11-25T03:00:00+00:00"),
        )
    return wav


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["privacy", *args])
    return result.exit_code, result.output


async def run(*args: str) -> tuple[int, str]:
    """The command as from a shell: in a thread of its own, outside the test's event loop
    (it runs a loop of its own)."""
    return await asyncio.to_thread(invoke, *args)


async def test_export_and_delete_a_caller(tmp_path: Path) -> None:
    wav = await fill(tmp_path)
    code, out = await run(
        "export", "--tenant", "tischlerei", "--person", "0171 12345678", "--data-dir", str(tmp_path)
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["person"] == CALLER
    assert [c["caller"] for c in data["calls"]] == [CALLER]
    assert [v["call_id"] for v in data["voicemails"]] == ["a"]
    assert data["calls"][0]["legs"][0]["owner"] == "jan"
    code, out = await run(
        "delete", "--tenant", "tischlerei", "--person", CALLER, "--yes", "--data-dir", str(tmp_path)
    )
    assert code == 0, out
    assert "calls: 1" in out
    assert "voicemails: 1" in out
    assert "files: 1" in out
    assert not wav.exists()
    again = json.loads(
        (
            await run(
                "export", "--tenant", "tischlerei", "--person", CALLER, "--data-dir", str(tmp_path)
            )
        )[1]
    )
    assert again["calls"] == []
    assert again["voicemails"] == []
    with sqlite3.connect(tmp_path / RECORDS_FILE) as db:
        callers = sorted(str(r[0]) for r in db.execute("SELECT caller FROM calls"))
    assert callers == [OTHER, OTHER, "None"]  # the call stays, its number is gone


async def test_export_and_delete_a_person(tmp_path: Path) -> None:
    await fill(tmp_path)
    data = json.loads(
        (
            await run(
                "export", "--tenant", "tischlerei", "--person", "jan", "--data-dir", str(tmp_path)
            )
        )[1]
    )
    assert len(data["calls"]) == 3
    assert [p["state"] for p in data["presence"]] == ["available"]
    code, out = await run(
        "delete", "--tenant", "tischlerei", "--person", "jan", "--yes", "--data-dir", str(tmp_path)
    )
    assert code == 0, out
    assert "legs: 3" in out
    assert "presence: 1" in out
    after = json.loads(
        (
            await run(
                "export", "--tenant", "tischlerei", "--person", "jan", "--data-dir", str(tmp_path)
            )
        )[1]
    )
    assert after["calls"] == []
    assert after["presence"] == []


async def test_purge_deletes_what_is_older_than_the_retention(tmp_path: Path) -> None:
    await fill(tmp_path)
    code, out = await run("purge", "--older-than", "90d", "--data-dir", str(tmp_path))
    assert code == 0, out
    assert out.strip() == "calls: 1, voicemails: 1, files: 1"
    assert not (tmp_path / "voicemail" / "tischlerei" / "old.wav").exists()
    assert (tmp_path / "voicemail" / "tischlerei" / "m1.wav").exists()


async def test_bad_input_is_one_line() -> None:
    code, out = await run(
        "export", "--tenant", "t", "--person", "../etc", "--data-dir", "/nonexistent"
    )
    assert code == 1
    assert "person id" in out
    with pytest.raises(PrivacyError, match="not a valid phone number"):
        Subject.parse("t", "0000")
    with pytest.raises(PrivacyError, match="older-than"):
        parse_age("soon")
    assert parse_age("2w") == 14 * 86400
    assert parse_age("36h") == 36 * 3600
    # An empty data directory exports nothing rather than failing.
    assert (
        json.loads(
            (await run("export", "--tenant", "t", "--person", "jan", "--data-dir", "/nonexistent"))[
                1
            ]
        )["calls"]
        == []
    )


async def test_purge_deletes_old_dictations_with_their_files(tmp_path: Path) -> None:
    old = write_tone(tmp_path / "dictation" / "tischlerei" / "old.wav")
    async with VoicemailBox(tmp_path / RECORDS_FILE) as box:
        await box.add(
            {
                "kind": "dictation",
                "person": "jan",
                "tenant": "tischlerei",
                "call_id": "d",
                "caller": "jan",
                "called": "*50",
                "seconds": 3.0,
                "path": str(old),
                "started_wall": time.time() - 200 * 86400,
            },
            "full",
        )
    code, out = await run("purge", "--older-than", "90d", "--data-dir", str(tmp_path))
    assert code == 0, out
    assert out.strip() == "calls: 0, voicemails: 1, files: 1"
    assert not old.exists()


async def add_dictation(data_dir: Path, person: str, name: str, started: float) -> Path:
    wav = write_tone(data_dir / "dictation" / "tischlerei" / name)
    async with VoicemailBox(data_dir / RECORDS_FILE) as box:
        await box.add(
            {
                "kind": "dictation",
                "person": person,
                "tenant": "tischlerei",
                "call_id": name,
                "caller": person,
                "called": "*50",
                "seconds": 3.0,
                "path": str(wav),
                "started_wall": started,
            },
            "full",
        )
    return wav


async def test_deleting_a_person_deletes_his_dictations_rows_and_files(tmp_path: Path) -> None:
    """Issue 14, item 9: before, ``privacy delete --person jan`` kept Jan's dictations."""
    await fill(tmp_path)
    mine = await add_dictation(tmp_path, "jan", "jan1.wav", time.time() - 30)
    theirs = await add_dictation(tmp_path, "eva", "eva1.wav", time.time() - 30)
    export = ["export", "--tenant", "tischlerei", "--person", "jan", "--data-dir", str(tmp_path)]
    before = json.loads((await run(*export))[1])
    assert [d["path"] for d in before["dictations"]] == [str(mine)]
    code, out = await run(
        "delete", "--tenant", "tischlerei", "--person", "jan", "--yes", "--data-dir", str(tmp_path)
    )
    assert code == 0, out
    assert "dictations: 1" in out
    assert "files: 1" in out
    assert not mine.exists()
    assert theirs.exists()  # someone else's stays
    with sqlite3.connect(tmp_path / RECORDS_FILE) as db:
        left = db.execute("SELECT person FROM voicemails WHERE kind = 'dictation'").fetchall()
    assert left == [("eva",)]
    assert json.loads((await run(*export))[1])["dictations"] == []
