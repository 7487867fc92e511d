""" "Call back later" reminders (issue 18): checked input, listed soonest first, popped once."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.errors import MessageError
from switch.records.reminders import Reminder, ReminderStore, due_wall

NOW = 1_800_000_000.0


def test_due_time_from_minutes_or_iso() -> None:
    assert due_wall({"in_minutes": 15}, NOW) == NOW + 900
    assert due_wall({"due": "2027-01-15T08:00:00+01:00"}, NOW) == NOW  # past: due now
    assert due_wall({"in_minutes": 0}, NOW) == NOW
    for bad in ({}, {"in_minutes": -1}, {"in_minutes": True}, {"due": "tomorrow"},
                {"due": "2027-01-15T08:00:00"}, {"in_minutes": 10**9}):  # fmt: skip
        with pytest.raises(MessageError):
            due_wall(bad, NOW)
    with pytest.raises(MessageError, match="tenant"):
        Reminder.from_request({"in_minutes": 1}, "anna", NOW)
    with pytest.raises(MessageError):
        Reminder.from_request([], "anna", NOW)


async def test_store_lists_pops_once_and_closes(tmp_path: Path) -> None:
    async with ReminderStore(tmp_path / "calls.sqlite3") as store:
        late = Reminder.from_request({"tenant": "t", "in_minutes": 10, "note": "b"}, "anna", NOW)
        soon = Reminder.from_request(
            {"tenant": "t", "in_minutes": 1, "note": "a", "number": "+49301"}, "anna", NOW
        )
        other = Reminder.from_request({"tenant": "u", "in_minutes": 1}, "susi", NOW)
        first = await store.add(late)
        second = await store.add(soon)
        await store.add(other)
        assert [r["note"] for r in await store.list_open("t")] == ["a", "b"]
        assert await store.pop_due(NOW + 30) == []
        due = await store.pop_due(NOW + 61)
        assert sorted((r["tenant"], r["note"]) for r in due) == [("t", "a"), ("u", "")]
        assert await store.pop_due(NOW + 62) == []  # once
        done = await store.mark_done(second["id"], NOW + 70)
        assert done is not None
        assert done["done_at"]
        assert [r["id"] for r in await store.list_open("t")] == [first["id"]]
        assert await store.mark_done(999, NOW) is None
