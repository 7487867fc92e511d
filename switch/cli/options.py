"""Options several commands share: the records database and the node's settings file.

``report``, ``privacy`` and ``contacts`` read the records either from SQLite (``--db`` or
``--data-dir``) or, with ``--settings``, from the ``records:`` section of a node's settings
(PostgreSQL: the schema the nodes share); :func:`shared_records` reads that section.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from switch.records.backend import RecordsSettings
from switch.records.schema import RECORDS_FILE
from switch.supervisor.settings import load_settings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def records_db(help_text: str) -> Decorator:
    """``--db PATH``: the SQLite records database, RECORDS_FILE under var/ by default."""
    return click.option(
        "--db",
        type=click.Path(path_type=Path),
        default=Path("var") / RECORDS_FILE,
        show_default=True,
        help=help_text,
    )


def node_settings(what: str) -> Decorator:
    """``--settings FILE`` (as ``settings_path``): whose records: section names ``what``."""
    return click.option(
        "--settings",
        "settings_path",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        default=None,
        help=f"The node's settings file: its records: section (PostgreSQL: {what}).",
    )


def shared_records(settings_path: Path | None) -> RecordsSettings | None:
    """The ``records:`` section of a settings file (None: SQLite under --data-dir/--db)."""
    if settings_path is None:
        return None
    return load_settings(settings_path).records


__all__ = ["node_settings", "records_db", "shared_records"]
