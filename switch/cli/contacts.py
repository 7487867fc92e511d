"""``rufweiche contacts import``: the address book of a business, from a CSV file.

The file has a header row with ``number`` and ``name`` (``note`` optional; ``;`` or ``,``
as the separator, as spreadsheets write it, UTF-8 with or without BOM). Numbers are
stored in E.164, so the console finds the caller whatever way the number was written.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import click

from switch.cli.options import node_settings, records_db, shared_records
from switch.errors import UsageError
from switch.records.backend import RecordsSettings, message_store
from switch.records.messages import save_contacts
from switch.records.schema import connect, migrate


def read_contacts(path: Path) -> list[tuple[str, str, str | None]]:
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=";,") if text else csv.excel
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    entries: list[tuple[str, str, str | None]] = []
    for line, row in enumerate(rows, start=2):
        number, name = (row.get("number") or "").strip(), (row.get("name") or "").strip()
        if not number or not name:
            raise UsageError(f"{path}:{line}: every row needs a number and a name")
        entries.append((number, name, (row.get("note") or "").strip() or None))
    return entries


async def _import(
    db_path: Path,
    tenant: str,
    entries: list[tuple[str, str, str | None]],
    records: RecordsSettings | None = None,
) -> int:
    if records is not None and records.postgresql:  # the shared schema: every node's console
        async with message_store(records, db_path.parent) as store:
            return await store.save_contacts(tenant, entries)
    db = await connect(db_path)
    try:
        await migrate(db, path=db_path)
        return await save_contacts(db, tenant, entries)
    finally:
        await db.close()


@click.group()
def contacts() -> None:
    """The address book per business (the console shows the caller's name)."""


@contacts.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--tenant", required=True, help="The business the contacts belong to.")
@records_db("The records database of the switch (SQLite).")
@node_settings("the shared schema")
def import_contacts(csv_file: Path, tenant: str, db: Path, settings_path: Path | None) -> None:
    """Add or update contacts from CSV_FILE (columns number, name[, note])."""
    records = shared_records(settings_path)
    count = asyncio.run(_import(db, tenant, read_contacts(csv_file), records))
    click.echo(f"{count} contacts for {tenant}")


__all__ = ["contacts", "read_contacts"]
