"""The monthly report: pure aggregation, and the command over a real records database."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest

from switch.cli.report import report_main
from switch.records.queries import month_bounds
from switch.records.report import ReportRow, aggregate, render_table, total
from switch.records.writer import RecordWriter
from tests.helpers.records import make_record


def test_aggregate_per_business() -> None:
    rows = [
        ReportRow("tischlerei", "answered", False, 4000.0, 64000.0),  # owner, 1 min
        ReportRow("tischlerei", "answered", True, 10000.0, 130000.0),  # service, 2 min
        ReportRow("tischlerei", "aborted", True, 6000.0, 66000.0),  # service, crashed: 1 min
        ReportRow("tischlerei", "missed", False, None, 30000.0),
        ReportRow("tischlerei", "cancelled", False, None, 3000.0),
        ReportRow("tischlerei", None, False, None, None),  # still ringing
        ReportRow(None, "rejected", False, None, 5.0),
    ]
    (no_plan, tischlerei) = aggregate(rows)
    assert no_plan.tenant == "(no plan)"
    assert no_plan.missed == 1
    assert no_plan.avg_answer_delay_s is None
    assert tischlerei.received == 6
    assert tischlerei.answered_owner == 1
    assert tischlerei.answered_service == 2
    assert tischlerei.missed == 2
    assert tischlerei.in_progress == 1
    assert tischlerei.service_minutes == pytest.approx(3.0)
    assert tischlerei.avg_answer_delay_s == pytest.approx((4 + 10 + 6) / 3)
    all_ = total([no_plan, tischlerei])
    assert all_.received == 7
    assert all_.avg_answer_delay_s == pytest.approx((4 + 10 + 6) / 3)


def test_table_lines_up_and_says_when_empty() -> None:
    assert render_table("2026-11", []) == "No calls in 2026-11.\n"
    text = render_table(
        "2026-11", aggregate([ReportRow("elektro", "answered", True, 2500.0, 92500.0)])
    )
    lines = text.splitlines()
    assert lines[0] == "Calls in 2026-11"
    header, body, last = lines[2], lines[4], lines[-1]
    assert header.split() == [
        "Business",
        "Received",
        "Owner",
        "Service",
        "Missed",
        "Active",
        "Service",
        "min",
        "Avg",
        "answer",
        "s",
        "Out",
        "Out",
        "answered",
        "Out",
        "min",
    ]
    assert body.split() == ["elektro", "1", "0", "1", "0", "0", "1.5", "2.5", "0", "0", "0.0"]
    assert last.split()[0] == "total"
    assert len({len(line) for line in (header, body)}) == 1


@pytest.fixture
async def month_db(tmp_path: Path) -> Path:
    db = tmp_path / "records.db"
    nov, dec = month_bounds("2026-11")
    async with RecordWriter(db) as writer:
        for tenant, by_service, minutes in (
            ("tischlerei", True, 3),
            ("tischlerei", False, 1),
            ("elektro", True, 5),
        ):
            writer.submit(
                "ended",
                make_record(
                    tenant=tenant,
                    started_wall=nov + 3600,
                    answer_in_ms=5999.0,
                    answer_relayed_ms=6000.0,
                    ended_ms=6000.0 + minutes * 60_000,
                    outcome="answered",
                    by_service=by_service,
                ),
            )
        writer.submit(
            "ended",
            make_record(
                tenant="tischlerei", started_wall=nov + 7200, ended_ms=20_000, outcome="missed"
            ),
        )
        writer.submit(
            "ended",
            make_record(tenant="tischlerei", started_wall=dec + 1, ended_ms=20, outcome="missed"),
        )
    return db


def test_report_csv_from_the_database(month_db: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert report_main("2026-11", None, "csv", month_db, out=out, err=err) == 0
    assert err.getvalue() == ""
    rows = {r["business"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert set(rows) == {"elektro", "tischlerei"}
    assert rows["tischlerei"]["received"] == "3"  # the December call is not in November
    assert rows["tischlerei"]["answered_owner"] == "1"
    assert rows["tischlerei"]["answered_service"] == "1"
    assert rows["tischlerei"]["missed"] == "1"
    assert rows["tischlerei"]["service_minutes"] == "3.0"
    assert rows["elektro"]["service_minutes"] == "5.0"
    assert rows["elektro"]["avg_answer_delay_s"] == "6.0"


def test_report_table_for_one_tenant(month_db: Path) -> None:
    out = io.StringIO()
    assert report_main("2026-11", "elektro", "table", month_db, out=out) == 0
    text = out.getvalue()
    assert "elektro" in text
    assert "tischlerei" not in text


@pytest.mark.parametrize(
    ("month", "fmt", "db_name", "code", "message"),
    [
        ("2026-13", "table", "records.db", 2, "month '2026-13' is not YYYY-MM"),
        ("2026-11", "xml", "records.db", 2, "format 'xml' is not one of table, csv"),
        ("2026-11", "table", "missing.db", 1, "missing.db' does not exist"),
    ],
)
def test_report_errors_are_one_line(
    month_db: Path, month: str, fmt: str, db_name: str, code: int, message: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert report_main(month, None, fmt, month_db.with_name(db_name), out=out, err=err) == code
    assert message in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert len(err.getvalue().splitlines()) == 1
    assert out.getvalue() == ""


def test_outbound_and_transferred_calls_count_apart() -> None:
    rows = [
        ReportRow("mueller", "answered", True, 5000.0, 65000.0),  # service, 1 min
        # put through by the service: its leg talked 30 s, the call 3 min
        ReportRow("mueller", "answered", False, 5000.0, 185000.0, "inbound", "heimbuero.a", 30e3),
        ReportRow("mueller", "answered", False, 1000.0, 121000.0, "outbound"),  # 2 min out
        ReportRow("mueller", "cancelled", False, None, 9000.0, "outbound"),  # nobody answered
    ]
    (m,) = aggregate(rows)
    assert (m.received, m.answered_service, m.answered_owner) == (2, 2, 0)
    assert m.service_minutes == pytest.approx(1.5)
    assert (m.outbound, m.outbound_answered) == (2, 1)
    assert m.outbound_minutes == pytest.approx(2.0)
    assert m.missed == 0


async def test_outbound_minutes_from_real_records_sqlite_and_german_headings(
    tmp_path: Path,
) -> None:
    db = tmp_path / "records.db"
    nov, _ = month_bounds("2026-11")
    async with RecordWriter(db) as writer:
        inbound = make_record(tenant="mueller", started_wall=nov + 60, answer_in_ms=999.0,
                              answer_relayed_ms=1000.0, ended_ms=61000.0, outcome="answered",
                              by_service=True)  # fmt: skip
        out = make_record(tenant="schmidt", started_wall=nov + 120, answer_in_ms=1999.0,
                          answer_relayed_ms=2000.0, ended_ms=182000.0,
                          outcome="answered")  # fmt: skip
        out.direction = "outbound"  # placed by the assistant on behalf of schmidt (*8)
        writer.submit("ended", inbound)
        writer.submit("ended", out)
    out_text, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(report_main, "2026-11", None, "csv", db, out=out_text, err=err)
    assert code == 0, err.getvalue()
    rows = {r["business"]: r for r in csv.DictReader(io.StringIO(out_text.getvalue()))}
    assert (rows["mueller"]["received"], rows["mueller"]["outbound"]) == ("1", "0")
    assert (rows["schmidt"]["received"], rows["schmidt"]["outbound"]) == ("0", "1")
    assert rows["schmidt"]["outbound_minutes"] == "3.0"
    assert rows["mueller"]["service_minutes"] == "1.0"
    table = io.StringIO()
    assert await asyncio.to_thread(report_main, "2026-11", None, "table", db, out=table) == 0
    assert table.getvalue().startswith("Anrufe im 2026-11")
    assert "Ausgehend" in table.getvalue()
    assert "Summe" in table.getvalue()


def test_queue_callers_who_hung_up_are_counted_as_abandoned() -> None:
    # Issue 19: a waiting caller who hangs up is "abandoned" (and still a missed call).
    rows = [
        ReportRow("praxis", "answered", True, 1000.0, 61000.0),
        ReportRow("praxis", "abandoned", False, None, 30000.0),
    ]
    (praxis,) = aggregate(rows)
    assert (praxis.answered_service, praxis.missed, praxis.abandoned) == (1, 1, 1)
    lines = render_table("2026-12", [praxis]).splitlines()
    assert lines[2].split()[-1] == "Abandoned"
    assert lines[4].split()[-1] == "1"
