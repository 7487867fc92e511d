"""The monthly report per business, from the call records (``rufweiche report``).

Per business, inbound and outbound apart (issue 17). Inbound: calls received; answered
by the owner's people (``answered_by_service`` false), answered by the secretarial
service, missed; minutes the service spent on the phone for the business (what it
bills); the average answer delay (INVITE in -> 200 OK relayed to the caller). Outbound
(``direction = 'outbound'``: the business's own phones, and the calls the assistant
placed on its behalf with ``*8<code>#`` or click to call — their ``tenant`` is the
business shown to the callee): calls, answered, and the minutes from the callee's answer
to the end (what the carrier bills the business).

A transferred call stays the business's that was called. Who answered it first counts:
when the service answered and put it through (or the owner's people handed it to the
service), the service's minutes are its legs' own talk time (``legs.answered_ms`` to
``legs.ended_ms`` of the service's legs), not the whole call's.

:func:`aggregate` is pure (rows in, figures out); :func:`load_rows` reads the rows
with :mod:`switch.records.queries`; the command line (``rufweiche report``) is
:mod:`switch.cli.report`.

Months are calendar months in ``tz`` (UTC unless told otherwise), by the time the
call arrived. A call still active when the report runs counts as received and "in
progress"; a call aborted by a worker crash after it was answered counts as answered.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiosqlite

from switch.records.backend import RecordsSettings, existing
from switch.records.messages import taken_per_tenant
from switch.records.queries import RecordReader, month_bounds, started_in

NO_PLAN: Final = "(no plan)"
FORMATS: Final = ("table", "csv")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The columns of one stored call that the report needs."""

    tenant: str | None
    outcome: str | None
    answered_by_service: bool
    answer_relayed_ms: float | None
    ended_ms: float | None
    direction: str = "inbound"
    transferred_by: str | None = None
    service_leg_ms: float | None = None  # talk time of the service's legs (transfers)


@dataclass(frozen=True, slots=True)
class BusinessMonth:
    tenant: str
    received: int
    answered_owner: int
    answered_service: int
    missed: int
    in_progress: int
    service_minutes: float
    avg_answer_delay_s: float | None
    messages: int = 0  # messages for the owner taken by the service (issue 18): billable
    outbound: int = 0  # calls out for the business (its phones, *8, click to call)
    outbound_answered: int = 0
    outbound_minutes: float = 0.0  # callee's answer to the end: billed by the carrier
    # Issue 19: callers who hung up while waiting in a queue (also counted as missed).
    abandoned: int = 0


@dataclass(slots=True)
class _Sums:
    received: int = 0
    answered_owner: int = 0
    answered_service: int = 0
    missed: int = 0
    in_progress: int = 0
    service_ms: float = 0.0
    answer_delay_ms: float = 0.0
    outbound: int = 0
    outbound_answered: int = 0
    outbound_ms: float = 0.0
    abandoned: int = 0

    def freeze(self, tenant: str) -> BusinessMonth:
        answered = self.answered_owner + self.answered_service
        return BusinessMonth(
            tenant=tenant,
            received=self.received,
            answered_owner=self.answered_owner,
            answered_service=self.answered_service,
            missed=self.missed,
            in_progress=self.in_progress,
            service_minutes=self.service_ms / 60_000,
            avg_answer_delay_s=self.answer_delay_ms / answered / 1000 if answered else None,
            outbound=self.outbound,
            outbound_answered=self.outbound_answered,
            outbound_minutes=self.outbound_ms / 60_000,
            abandoned=self.abandoned,
        )

    def add_outbound(self, row: ReportRow) -> None:
        self.outbound += 1
        if row.answer_relayed_ms is not None:
            self.outbound_answered += 1
            if row.ended_ms is not None:
                self.outbound_ms += max(0.0, row.ended_ms - row.answer_relayed_ms)
        elif row.outcome is None:
            self.in_progress += 1

    def add_answered(self, row: ReportRow) -> None:
        assert row.answer_relayed_ms is not None
        self.answer_delay_ms += row.answer_relayed_ms
        if row.transferred_by is not None:
            # Put through: the service's share is its own legs' talk time (module docstring).
            if row.service_leg_ms:
                self.answered_service += 1
                self.service_ms += max(0.0, row.service_leg_ms)
            else:
                self.answered_owner += 1
        elif row.answered_by_service:
            self.answered_service += 1
            if row.ended_ms is not None:
                self.service_ms += max(0.0, row.ended_ms - row.answer_relayed_ms)
        else:
            self.answered_owner += 1


def aggregate(rows: Iterable[ReportRow]) -> list[BusinessMonth]:
    """Figures per business, sorted by name; a total is :func:`total` of these."""
    sums: dict[str, _Sums] = {}
    for row in rows:
        s = sums.setdefault(row.tenant or NO_PLAN, _Sums())
        if row.direction == "outbound":
            s.add_outbound(row)
            continue
        s.received += 1
        if row.answer_relayed_ms is not None:
            s.add_answered(row)
        elif row.outcome is None:
            s.in_progress += 1
        else:
            s.missed += 1
            s.abandoned += row.outcome == "abandoned"
    return [sums[t].freeze(t) for t in sorted(sums)]


def total(months: Iterable[BusinessMonth]) -> BusinessMonth:
    months = list(months)
    answered = sum(m.answered_owner + m.answered_service for m in months)
    delay = sum(
        (m.avg_answer_delay_s or 0.0) * (m.answered_owner + m.answered_service) for m in months
    )
    return BusinessMonth(
        tenant="total",
        received=sum(m.received for m in months),
        answered_owner=sum(m.answered_owner for m in months),
        answered_service=sum(m.answered_service for m in months),
        missed=sum(m.missed for m in months),
        in_progress=sum(m.in_progress for m in months),
        service_minutes=sum(m.service_minutes for m in months),
        avg_answer_delay_s=delay / answered if answered else None,
        messages=sum(m.messages for m in months),
        outbound=sum(m.outbound for m in months),
        outbound_answered=sum(m.outbound_answered for m in months),
        outbound_minutes=sum(m.outbound_minutes for m in months),
        abandoned=sum(m.abandoned for m in months),
    )


def with_messages(months: list[BusinessMonth], taken: dict[str, int]) -> list[BusinessMonth]:
    """``months`` with the messages taken per business (a business with messages but no
    calls gets a row of its own)."""
    by_tenant = {m.tenant: m for m in months}
    for tenant, count in taken.items():
        month = by_tenant.get(tenant) or _Sums().freeze(tenant)
        by_tenant[tenant] = dataclasses.replace(month, messages=count)
    return [by_tenant[t] for t in sorted(by_tenant)]


MESSAGES_COLUMN: Final = ("messages", "Messages")
OPTIONAL_COLUMNS: Final = (MESSAGES_COLUMN, ("abandoned", "Abandoned"))  # abandoned: issue 19


def _columns(months: list[BusinessMonth]) -> tuple[tuple[str, str], ...]:
    # The messages column only when the month has any, so reports of a switch without the
    # console read as before.
    extra = tuple(c for c in OPTIONAL_COLUMNS if any(getattr(m, c[0]) for m in months))
    return (*COLUMNS, *extra) if extra else COLUMNS


COLUMNS: Final = (
    ("business", "Business"),
    ("received", "Received"),
    ("answered_owner", "Owner"),
    ("answered_service", "Service"),
    ("missed", "Missed"),
    ("in_progress", "Active"),
    ("service_minutes", "Service min"),
    ("avg_answer_delay_s", "Avg answer s"),
    ("outbound", "Out"),
    ("outbound_answered", "Out answered"),
    ("outbound_minutes", "Out min"),
)
GERMAN: Final = {
    "business": "Betrieb",
    "received": "Eingehend",
    "answered_owner": "Betrieb angen.",
    "answered_service": "Sekretariat",
    "missed": "Verpasst",
    "in_progress": "Laufend",
    "service_minutes": "Sekr. Min",
    "avg_answer_delay_s": "Ø Annahme s",
    "outbound": "Ausgehend",
    "outbound_answered": "Ausg. verbunden",
    "outbound_minutes": "Ausg. Min",
    "messages": "Notizen",
    "abandoned": "Aufgelegt",
    "total": "Summe",
    "calls_in": "Anrufe im {month}",
    "no_calls": "Keine Anrufe im {month}.",
}
"""The table's headings in German (``rufweiche report`` is German unless ``--lang en``)."""
ENGLISH: Final = {
    **dict((*COLUMNS, *OPTIONAL_COLUMNS)),
    "total": "total",
    "calls_in": "Calls in {month}",
    "no_calls": "No calls in {month}.",
}


def _cells(m: BusinessMonth, columns: tuple[tuple[str, str], ...] = COLUMNS) -> list[str]:
    cells = [
        m.tenant,
        str(m.received),
        str(m.answered_owner),
        str(m.answered_service),
        str(m.missed),
        str(m.in_progress),
        f"{m.service_minutes:.1f}",
        "" if m.avg_answer_delay_s is None else f"{m.avg_answer_delay_s:.1f}",
        str(m.outbound),
        str(m.outbound_answered),
        f"{m.outbound_minutes:.1f}",
    ]
    return [*cells, *(str(getattr(m, key)) for key, _ in columns[len(COLUMNS) :])]


def render_csv(months: list[BusinessMonth]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(months)
    writer.writerow([key for key, _ in columns])
    for m in months:
        writer.writerow(_cells(m, columns))
    return out.getvalue()


def render_table(
    month: str, months: list[BusinessMonth], titles: Mapping[str, str] = ENGLISH
) -> str:
    """The month as a table with ``titles`` (:data:`ENGLISH` or :data:`GERMAN`)."""
    if not months:
        return titles["no_calls"].format(month=month) + "\n"
    columns = _columns(months)
    cells = [_cells(m, columns) for m in [*months, total(months)]]
    cells[-1][0] = titles["total"]
    rows = [[titles.get(key, title) for key, title in columns], *cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(rows[0]), rule, *(line(r) for r in rows[1:-1]), rule, line(rows[-1])]
    return titles["calls_in"].format(month=month) + "\n\n" + "\n".join(body) + "\n"


@contextlib.asynccontextmanager
async def _month_db(
    db: Path, records: RecordsSettings | None
) -> AsyncIterator[aiosqlite.Connection]:
    """The records the report reads: the SQLite file ``db``, or with ``records`` on
    PostgreSQL the schema every node writes to (``db`` is then not used)."""
    if records is not None and records.postgresql:
        async with existing(db.parent, records) as shared:
            assert shared is not None
            yield shared
    else:
        async with RecordReader(db) as reader:
            yield reader.db


async def load_rows(
    db: Path,
    month: str,
    tenant: str | None = None,
    tz: str = "UTC",
    records: RecordsSettings | None = None,
) -> list[ReportRow]:
    """The month's rows from the SQLite file ``db``, or with ``records`` on PostgreSQL
    from the schema every node writes to (``db`` is then not used)."""
    since, until = month_bounds(month, tz)
    sql = (
        "SELECT c.tenant, c.outcome, c.answered_by_service, c.answer_relayed_ms, c.ended_ms, "
        "c.direction, c.transferred_by, "
        "(SELECT SUM(l.ended_ms - l.answered_ms) FROM legs l WHERE l.call_row = c.id "
        "AND l.is_service = 1 AND l.answered_ms IS NOT NULL AND l.ended_ms IS NOT NULL) "
        "FROM calls c WHERE "
    )
    where, args = started_in(since, until, tenant, "c")
    sql += where
    async with _month_db(db, records) as conn, conn.execute(sql, args) as cursor:
        found = await cursor.fetchall()
    return [
        ReportRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5] or "inbound", r[6], r[7]) for r in found
    ]


async def load_messages(
    db: Path,
    month: str,
    tenant: str | None = None,
    tz: str = "UTC",
    records: RecordsSettings | None = None,
) -> dict[str, int]:
    """Messages taken per business in ``month`` (``messages.taken_per_tenant``); with
    ``records`` on PostgreSQL every node's (``db`` is then not used)."""
    since, until = month_bounds(month, tz)
    async with _month_db(db, records) as conn:
        taken = await taken_per_tenant(conn, since, until)
    return {t: n for t, n in taken.items() if tenant is None or t == tenant}
