"""``rufweiche report``: the month per business, printed as a table or CSV.

The figures are :mod:`switch.records.report`; this module parses the options and prints.
Exit status: 0, 2 for a bad argument, 1 for a database that cannot be read.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

import click

from switch import i18n
from switch.cli.options import node_settings, records_db, shared_records
from switch.errors import RecordsError
from switch.records.backend import RecordsSettings
from switch.records.queries import month_bounds
from switch.records.report import (
    ENGLISH,
    FORMATS,
    GERMAN,
    aggregate,
    load_messages,
    load_rows,
    render_csv,
    render_table,
    with_messages,
)


def report_main(
    month: str,
    tenant: str | None,
    fmt: str,
    db: Path,
    *,
    tz: str = "UTC",
    out: TextIO | None = None,
    err: TextIO | None = None,
    records: RecordsSettings | None = None,
) -> int:
    """Print the month's report; 0 on success, 2 for a bad argument, 1 for a database problem."""
    out = out or sys.stdout
    err = err or sys.stderr
    if fmt not in FORMATS:
        print(f"report: format {fmt!r} is not one of {', '.join(FORMATS)}", file=err)
        return 2
    try:
        month_bounds(month, tz)
    except ValueError as exc:
        print(f"report: {exc}", file=err)
        return 2
    try:
        rows = asyncio.run(load_rows(Path(db), month, tenant, tz, records))
        taken = asyncio.run(load_messages(Path(db), month, tenant, tz, records))
    except RecordsError as exc:
        print(f"report: {exc}", file=err)
        return 1
    months = with_messages(aggregate(rows), taken)
    titles = ENGLISH if i18n.current() == "en" else GERMAN  # German unless --lang en
    out.write(render_csv(months) if fmt == "csv" else render_table(month, months, titles))
    return 0


@click.command()
@click.option("--month", required=True, metavar="YYYY-MM", help="The calendar month to report.")
@click.option("--tenant", help="Only this business.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="table",
    show_default=True,
)
@records_db("The call records database of the switch.")
@click.option(
    "--timezone",
    "tz",
    default="Europe/Berlin",
    show_default=True,
    help="Time zone the month is counted in.",
)
@node_settings("every node's calls")
def report(
    month: str, tenant: str | None, fmt: str, db: Path, tz: str, settings_path: Path | None
) -> None:
    """Per business: calls received, answered by the owner or the service, missed,
    minutes the service handled, average answer delay — the basis for billing."""
    records = shared_records(settings_path)
    code = report_main(month, tenant, fmt, db, tz=tz, records=records)
    if code:
        raise click.exceptions.Exit(code)


__all__ = ["report", "report_main"]
