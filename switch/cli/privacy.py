"""``rufweiche privacy export|delete|purge``: data-subject requests and retention.

What is exported, erased and purged is :mod:`switch.records.privacy`; this module parses
the options, asks for confirmation and prints. A :class:`~switch.errors.SwitchError`
(a bad ``--person``, a bad ``--older-than``) is one line ``rufweiche: ...`` and exit 1,
as everywhere in the CLI (a SwitchError becomes one line, exit 1).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from switch.cli.options import node_settings, shared_records
from switch.records import privacy as records

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var"),
    show_default=True,
    help="The switch's data directory.",
)
_SETTINGS = node_settings("every node's data")
_TENANT = click.option("--tenant", required=True, help="The dial plan's tenant id.")
_PERSON = click.option("--person", required=True, help="A caller's phone number or a person id.")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in counts.items())


@click.group()
def privacy() -> None:
    """Data-subject requests (GDPR Art. 15/17) and retention."""


@privacy.command("export")
@_TENANT
@_PERSON
@_DATA_DIR
@_SETTINGS
def export_command(tenant: str, person: str, data_dir: Path, settings_path: Path | None) -> None:
    """Print everything stored about a caller or person, as JSON."""
    subject = records.Subject.parse(tenant, person)
    data = asyncio.run(records.export(data_dir, subject, shared_records(settings_path)))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@privacy.command("delete")
@_TENANT
@_PERSON
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_DATA_DIR
@_SETTINGS
def delete_command(
    tenant: str, person: str, yes: bool, data_dir: Path, settings_path: Path | None
) -> None:
    """Erase a caller's number and messages, or a person's traces."""
    subject = records.Subject.parse(tenant, person)
    if not yes:
        click.confirm(f"erase {subject.number or subject.person} in {tenant}?", abort=True)
    counts = asyncio.run(records.delete(data_dir, subject, shared_records(settings_path)))
    click.echo(_counts(counts))


@privacy.command("purge")
@click.option("--older-than", "older_than", required=True, help="e.g. 90d, 12w, 36h.")
@click.option("--tenant", default=None, help="Only this tenant (default: all).")
@_DATA_DIR
@_SETTINGS
def purge_command(
    older_than: str, tenant: str | None, data_dir: Path, settings_path: Path | None
) -> None:
    """Delete calls and voicemail older than the retention period."""
    age = records.parse_age(older_than)
    shared = shared_records(settings_path)
    counts = asyncio.run(records.purge(data_dir, age, tenant, shared))
    click.echo(_counts(counts))


__all__ = ["privacy"]
