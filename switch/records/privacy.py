"""Data-subject requests and retention (GDPR Art. 15 access, Art. 17 erasure, Art. 5(1)(e)).

``rufweiche privacy export|delete --tenant T --person P`` and
``rufweiche privacy purge --older-than 90d``, working offline on the data directory
(the switch may run meanwhile: SQLite in WAL mode, short transactions).

Who ``--person`` is:

* a **phone number** (``+49 171 …``, ``0171 …``): a *caller*. Matched exactly (E.164)
  against ``calls.caller`` and ``voicemails.caller`` — rows stored ``masked`` or ``none``
  (the plan's ``store_caller``) hold no number and cannot be attributed to anyone.
  Erasure deletes the caller's voicemail messages (rows and WAV files) and blanks the
  number in call rows, keeping the call's anonymous figures (times, outcome).
* a **person id** of the plan (``jan``): someone of the business or the service.
  Matched against ``legs.owner``, ``calls.answered_by`` and the presence table.
  Erasure deletes the presence row and replaces the id in legs and calls by ``(erased)``.

Purge deletes calls (with their legs) and voicemail messages (rows and files) that
started before the cut-off.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from rules import normalize_number

ERASED = "(erased)"
CALLS_DB = "calls.sqlite3"
PRESENCE_DB = "presence.sqlite3"
_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[dhw]?)$")


class PrivacyError(click.ClickException):
    """A privacy request that cannot be carried out; one line, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"rufweiche: {self.format_message()}", err=True)


@dataclass(frozen=True, slots=True)
class Subject:
    tenant: str
    number: str | None  # E.164 when --person is a phone number
    person: str | None  # a plan person id otherwise

    @classmethod
    def parse(cls, tenant: str, raw: str) -> Subject:
        text = raw.strip()
        if not text:
            raise PrivacyError("--person is empty")
        if re.fullmatch(r"[+0-9][0-9 ()/-]*", text):
            number = normalize_number(text)
            if number is None:
                raise PrivacyError(f"--person {raw!r} is not a valid phone number")
            return cls(tenant, number, None)
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", text):
            raise PrivacyError(f"--person {raw!r}: give a phone number or a person id")
        return cls(tenant, None, text)


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection | None]:
    if not path.is_file():
        yield None
        return
    db = sqlite3.connect(path, timeout=5.0)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    try:
        yield db
    finally:
        db.close()


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def _rows(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(row) for row in db.execute(sql, args)]


def _person_calls(subject: Subject) -> tuple[str, tuple[Any, ...]]:
    if subject.number is not None:
        return "tenant = ? AND caller = ?", (subject.tenant, subject.number)
    like = f"{subject.person}.%"
    return (
        "tenant = ? AND (answered_by = ? OR answered_by LIKE ? OR id IN "
        "(SELECT call_row FROM legs WHERE owner = ?))",
        (subject.tenant, subject.person, like, subject.person),
    )


def export(data_dir: Path, subject: Subject) -> dict[str, Any]:
    """Everything stored about ``subject`` (Art. 15), as JSON-ready data."""
    result: dict[str, Any] = {
        "tenant": subject.tenant,
        "person": subject.number or subject.person,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "calls": [],
        "voicemails": [],
        "presence": [],
    }
    with _open(data_dir / CALLS_DB) as db:
        if db is not None:
            where, args = _person_calls(subject)
            calls = _rows(db, f"SELECT * FROM calls WHERE {where} ORDER BY started_wall", args)
            for call in calls:
                call["legs"] = _rows(
                    db, "SELECT * FROM legs WHERE call_row = ? ORDER BY leg", (call["id"],)
                )
            result["calls"] = calls
            if subject.number is not None and _has_table(db, "voicemails"):
                result["voicemails"] = _rows(
                    db,
                    "SELECT * FROM voicemails WHERE tenant = ? AND caller = ? "
                    "ORDER BY started_wall",
                    (subject.tenant, subject.number),
                )
    if subject.person is not None:
        with _open(data_dir / PRESENCE_DB) as db:
            if db is not None and _has_table(db, "presence"):
                result["presence"] = _rows(
                    db,
                    "SELECT * FROM presence WHERE tenant = ? AND person = ?",
                    (subject.tenant, subject.person),
                )
    return result


def delete(data_dir: Path, subject: Subject) -> dict[str, int]:
    """Erase ``subject`` (Art. 17); returns what was changed, by kind."""
    counts = {"calls": 0, "legs": 0, "voicemails": 0, "files": 0, "presence": 0}
    with _open(data_dir / CALLS_DB) as db:
        if db is not None:
            with db:  # one transaction
                if subject.number is not None:
                    counts["calls"] = db.execute(
                        "UPDATE calls SET caller = NULL, caller_policy = 'erased' "
                        "WHERE tenant = ? AND caller = ?",
                        (subject.tenant, subject.number),
                    ).rowcount
                    if _has_table(db, "voicemails"):
                        paths = [
                            str(row["path"])
                            for row in db.execute(
                                "SELECT path FROM voicemails WHERE tenant = ? AND caller = ?",
                                (subject.tenant, subject.number),
                            )
                        ]
                        counts["voicemails"] = db.execute(
                            "DELETE FROM voicemails WHERE tenant = ? AND caller = ?",
                            (subject.tenant, subject.number),
                        ).rowcount
                        counts["files"] = _unlink(data_dir, paths)
                else:
                    person = subject.person
                    counts["legs"] = db.execute(
                        "UPDATE legs SET owner = ?, target = ?, uri = ? WHERE owner = ? AND "
                        "call_row IN (SELECT id FROM calls WHERE tenant = ?)",
                        (ERASED, ERASED, ERASED, person, subject.tenant),
                    ).rowcount
                    counts["calls"] = db.execute(
                        "UPDATE calls SET answered_by = ? WHERE tenant = ? AND "
                        "(answered_by = ? OR answered_by LIKE ?)",
                        (ERASED, subject.tenant, person, f"{person}.%"),
                    ).rowcount
    if subject.person is not None:
        with _open(data_dir / PRESENCE_DB) as db:
            if db is not None and _has_table(db, "presence"):
                with db:
                    counts["presence"] = db.execute(
                        "DELETE FROM presence WHERE tenant = ? AND person = ?",
                        (subject.tenant, subject.person),
                    ).rowcount
    return counts


def purge(data_dir: Path, older_than_s: float, tenant: str | None = None) -> dict[str, int]:
    """Retention: delete calls and voicemail messages that started before now - older_than_s."""
    cutoff = time.time() - older_than_s
    counts = {"calls": 0, "voicemails": 0, "files": 0}
    scope, args = ("", ()) if tenant is None else (" AND tenant = ?", (tenant,))
    with _open(data_dir / CALLS_DB) as db:
        if db is None:
            return counts
        with db:
            counts["calls"] = db.execute(
                f"DELETE FROM calls WHERE started_wall < ? AND outcome IS NOT NULL{scope}",
                (cutoff, *args),
            ).rowcount
            if _has_table(db, "voicemails"):
                paths = [
                    str(row["path"])
                    for row in db.execute(
                        f"SELECT path FROM voicemails WHERE started_wall < ?{scope}",
                        (cutoff, *args),
                    )
                ]
                counts["voicemails"] = db.execute(
                    f"DELETE FROM voicemails WHERE started_wall < ?{scope}", (cutoff, *args)
                ).rowcount
                counts["files"] = _unlink(data_dir, paths)
    return counts


def _unlink(data_dir: Path, paths: list[str]) -> int:
    """Delete voicemail files; only ever below ``<data_dir>/voicemail`` or ``/dictation``."""
    roots = [(data_dir / kind).resolve() for kind in ("voicemail", "dictation")]
    removed = 0
    for text in paths:
        path = Path(text).resolve()
        if not any(root in path.parents for root in roots):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def parse_age(text: str) -> float:
    """``90d``, ``12w``, ``36h`` or plain days (``90``) as seconds."""
    match = _DURATION.match(text.strip())
    if match is None or int(match["n"]) <= 0:
        raise PrivacyError(f"--older-than {text!r}: expected e.g. 90d, 12w or 36h")
    factor = {"": 86400, "d": 86400, "w": 7 * 86400, "h": 3600}[match["unit"]]
    return int(match["n"]) * factor


# -------------------------------------------------------------------- command line

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var"),
    show_default=True,
    help="The switch's data directory.",
)


@click.group()
def privacy() -> None:
    """Data-subject requests (GDPR Art. 15/17) and retention."""


@privacy.command("export")
@click.option("--tenant", required=True, help="The dial plan's tenant id.")
@click.option("--person", required=True, help="A caller's phone number or a person id.")
@_DATA_DIR
def export_command(tenant: str, person: str, data_dir: Path) -> None:
    """Print everything stored about a caller or person, as JSON."""
    import json

    data = export(data_dir, Subject.parse(tenant, person))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@privacy.command("delete")
@click.option("--tenant", required=True, help="The dial plan's tenant id.")
@click.option("--person", required=True, help="A caller's phone number or a person id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_DATA_DIR
def delete_command(tenant: str, person: str, yes: bool, data_dir: Path) -> None:
    """Erase a caller's number and messages, or a person's traces."""
    subject = Subject.parse(tenant, person)
    if not yes:
        click.confirm(f"erase {subject.number or subject.person} in {tenant}?", abort=True)
    counts = delete(data_dir, subject)
    click.echo(", ".join(f"{kind}: {count}" for kind, count in counts.items()))


@privacy.command("purge")
@click.option("--older-than", "older_than", required=True, help="e.g. 90d, 12w, 36h.")
@click.option("--tenant", default=None, help="Only this tenant (default: all).")
@_DATA_DIR
def purge_command(older_than: str, tenant: str | None, data_dir: Path) -> None:
    """Delete calls and voicemail older than the retention period."""
    counts = purge(data_dir, parse_age(older_than), tenant)
    click.echo(", ".join(f"{kind}: {count}" for kind, count in counts.items()))


__all__ = ["PrivacyError", "Subject", "delete", "export", "parse_age", "privacy", "purge"]
