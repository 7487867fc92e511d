"""Messages and contacts (issue 18's tables) in PostgreSQL: two nodes' message desks file
into one shared schema, each node's console sees the other's messages and the contacts
imported once, and ``rufweiche report`` counts both nodes' messages. Against the real
server on 127.0.0.1:5432 (database ``test``, a schema per test, dropped at the end)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from switch.cli import main
from switch.records.backend import message_store
from switch.records.messages import Message, MessageStore
from switch.records.postgres import PgMessageStore
from switch.supervisor.messages import MessageDesk
from tests.helpers.pg import fresh_schema, records_settings, settings_file

OCT = time.mktime((2026, 10, 14, 10, 0, 0, 0, 0, 0))  # within 2026-10 in UTC and Berlin


def test_the_backend_gives_sqlite_or_postgresql_message_stores(tmp_path: Path) -> None:
    lite = message_store(None, tmp_path)
    assert type(lite) is MessageStore
    assert lite.db_path == tmp_path / "calls.sqlite3"
    shared = message_store(records_settings("rufweiche", "a"), tmp_path)
    assert isinstance(shared, PgMessageStore)
    assert shared.schema == "rufweiche"


def desk(schema: str, node: str, tmp_path: Path) -> MessageDesk:
    return MessageDesk(
        tmp_path / node / "calls.sqlite3",
        lambda _t: None,
        lambda _t: None,
        store=message_store(records_settings(schema, node), tmp_path / node),
    )


@pytest.mark.peer
async def test_two_nodes_desks_share_messages_contacts_and_the_report(tmp_path: Path) -> None:
    async with fresh_schema() as schema:
        csv_file = tmp_path / "contacts.csv"
        csv_file.write_text("number;name;note\n0171 4444444;Frau Berger;Stammkundin\n")
        runner = CliRunner()
        imported = await asyncio.to_thread(
            runner.invoke,
            main,
            [
                "contacts",
                "import",
                str(csv_file),
                "--tenant",
                "tischlerei",
                "--settings",
                str(settings_file(tmp_path, schema)),
            ],
        )
        assert imported.exit_code == 0, imported.output
        async with desk(schema, "node-a", tmp_path) as a, desk(schema, "node-b", tmp_path) as b:
            first = await a.take(
                Message("tischlerei", "anna", "Angebot", number="+491714444444", taken_wall=OCT)
            )
            second = await b.take(
                Message("tischlerei", "susi", "Termin", number="+491714444444", taken_wall=OCT + 1)
            )
            await a.idle()
            await b.idle()
            assert first["id"] != second["id"]
            # node A's console sees node B's message (and the other way round)
            seen_on_a = [m["concern"] for m in await a.list("tischlerei")]
            assert seen_on_a == ["Termin", "Angebot"]
            assert [m["id"] for m in await b.list("tischlerei")] == [second["id"], first["id"]]
            # the contact imported once is found by both nodes' consoles
            for node in (a, b):
                contact = await node.contact("tischlerei", "0171 4444444")
                assert contact == {
                    "number": "+491714444444",
                    "name": "Frau Berger",
                    "note": "Stammkundin",
                }
            # done on node B, seen done on node A; the mail error noted by each node's desk
            done = await b.mark_done(int(first["id"]))
            assert done is not None
            assert done["done_at"] is not None
            rows = {m["id"]: m for m in await a.list("tischlerei")}
            assert rows[first["id"]]["done_at"] == done["done_at"]
            assert rows[second["id"]]["mail_error"] == "no smtp: server for the tenant"
            assert await a.tenant_of(int(second["id"])) == "tischlerei"
        report = await asyncio.to_thread(
            runner.invoke,
            main,
            [
                "report",
                "--month",
                "2026-10",
                "--format",
                "csv",
                "--timezone",
                "UTC",
                "--settings",
                str(settings_file(tmp_path, schema)),
            ],
        )
        assert report.exit_code == 0, report.output
        header, line = report.output.splitlines()[:2]
        assert header.split(",")[-1] == "messages"
        assert line.startswith("tischlerei,")
        assert line.split(",")[-1] == "2"
        # nothing was written to SQLite files on the nodes
        assert not list(tmp_path.rglob("*.sqlite3"))


@pytest.mark.peer
async def test_privacy_exports_and_erases_a_callers_messages_of_every_node(
    tmp_path: Path,
) -> None:
    from switch.records import privacy

    number = "+491715555555"
    async with fresh_schema() as schema:
        async with desk(schema, "node-a", tmp_path) as a, desk(schema, "node-b", tmp_path) as b:
            await a.take(Message("tischlerei", "anna", "Angebot", number=number, taken_wall=OCT))
            await b.take(Message("tischlerei", "susi", "Termin", number=number, taken_wall=OCT))
            await b.take(Message("tischlerei", "susi", "Andere", number="+4930123", taken_wall=OCT))
            await a.store.save_contacts("tischlerei", [(number, "Herr Kunde", None)])
            await a.idle()
            await b.idle()
        subject = privacy.Subject.parse("tischlerei", number)
        records = records_settings(schema, "tool")
        exported = await privacy.export(tmp_path, subject, records)
        assert sorted(m["concern"] for m in exported["messages"]) == ["Angebot", "Termin"]
        counts = await privacy.delete(tmp_path, subject, records)
        assert counts["messages"] == 2
        after = await privacy.export(tmp_path, subject, records)
        assert after["messages"] == []
        async with desk(schema, "node-b", tmp_path) as b:
            assert [m["concern"] for m in await b.list("tischlerei")] == ["Andere"]
            assert await b.contact("tischlerei", number) is None
