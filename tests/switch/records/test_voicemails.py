"""switch/records/voicemails.py: the voicemails table against a real SQLite file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from switch.errors import VoicemailError
from switch.records import voicemails
from switch.records.schema import RECORDS_FILE, connect, transaction
from switch.records.voicemails import Voicemail, VoicemailStore


def worker_report(**overrides: Any) -> dict[str, Any]:
    """A worker's ``voicemail`` control message."""
    base = {
        "op": "voicemail",
        "tenant": "mueller",
        "call_id": "abc@host",
        "caller": "+4917112345678",
        "called": "+49301234560",
        "path": "/var/voicemail/mueller/x.wav",
        "seconds": 12.34,
        "started_wall": 1_795_575_396.0,
    }
    return {**base, **overrides}


def test_a_report_becomes_a_record_with_the_plans_caller_policy() -> None:
    mail = Voicemail.from_message(worker_report(), "masked")
    assert mail.caller == "+491********78"
    assert (mail.kind, mail.person, mail.seconds) == ("voicemail", None, 12.34)
    assert Voicemail.from_message(worker_report(), "none").caller is None
    dictation = Voicemail.from_message(worker_report(kind="dictation", person="jan"), "full")
    assert (dictation.kind, dictation.person, dictation.caller) == (
        "dictation",
        "jan",
        "+4917112345678",
    )
    with pytest.raises(VoicemailError, match="voicemail report"):
        Voicemail.from_message({"tenant": "x"}, "full")
    with pytest.raises(VoicemailError, match="kind 'fax'"):
        Voicemail.from_message(worker_report(kind="fax"), "full")


async def add(store: VoicemailStore, policy: str = "full", **overrides: Any) -> None:
    await store.add(Voicemail.from_message(worker_report(**overrides), policy), policy)


async def test_store_lists_newest_first_per_kind_and_tenant(tmp_path: Path) -> None:
    async with VoicemailStore(tmp_path / RECORDS_FILE) as store:
        await add(store, "none")
        await add(store, call_id="second", started_wall=1_795_575_500.0, tenant="other")
        await add(
            store,
            kind="dictation",
            person="jan",
            call_id="d",
            path="/var/dictation/mueller/d.wav",
        )
        rows = await store.list()
        assert [r["call_id"] for r in rows] == ["second", "abc@host"]
        assert rows[1]["caller"] is None  # store_caller: none
        assert rows[1]["url"] == "/files/voicemail/mueller/x.wav"
        assert [r["call_id"] for r in await store.list("mueller")] == ["abc@host"]
        (dictation,) = await store.list(kind="dictation")
        assert (dictation["person"], dictation["done_at"]) == ("jan", None)
        assert dictation["url"] == "/files/dictation/mueller/d.wav"
        row_id = dictation["id"]
        assert await store.tenant_of(row_id, "dictation") == "mueller"
        assert await store.tenant_of(row_id, "voicemail") is None
        done = await store.mark_done(row_id, 1_795_575_600.0)
        assert done == {
            "id": row_id,
            "tenant": "mueller",
            "done_at": "2026-11-25T03:00:00.000+00:00",
        }
        again = await store.mark_done(row_id, 1_795_579_999.0)  # the first time stays
        assert again == done
        assert await store.mark_done(row_id + 100, time.time()) is None
    with pytest.raises(VoicemailError, match="outside"):
        await store.list()


async def test_privacy_queries_find_and_delete_a_callers_and_old_rows(tmp_path: Path) -> None:
    db_path = tmp_path / RECORDS_FILE
    async with VoicemailStore(db_path) as store:
        await add(store, call_id="a", path="/a.wav")
        await add(store, call_id="b", path="/b.wav", caller="+4930999", started_wall=100.0)
        await add(store, call_id="c", path="/c.wav", tenant="other", started_wall=100.0)
    db = await connect(db_path)
    try:
        found = await voicemails.of_caller(db, "mueller", "+4917112345678")
        assert [r["call_id"] for r in found] == ["a"]
        assert found[0]["caller_policy"] == "full"
        async with transaction(db):
            assert await voicemails.delete_older(db, 200.0, "mueller") == ["/b.wav"]
        async with transaction(db):
            assert await voicemails.delete_of_caller(db, "mueller", "+4917112345678") == ["/a.wav"]
        async with transaction(db):
            assert await voicemails.delete_older(db, 200.0, None) == ["/c.wav"]
        assert await voicemails.of_caller(db, "mueller", "+4917112345678") == []
    finally:
        await db.close()
