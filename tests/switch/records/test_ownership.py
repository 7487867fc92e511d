"""switch/records/ owns the calls database; nothing else in switch/ names or opens it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from switch.records.schema import RECORDS_FILE
from tests.helpers import source

SWITCH = Path(__file__).parents[3] / "switch"
RECORDS = SWITCH / "records"
# SQLite files that are not the calls database: Kamailio's (edge) and the phones' secrets.
OTHER_DATABASES = {SWITCH / "edge" / "database.py", SWITCH / "edge" / "credentials.py"}


def modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_the_file_name_is_written_once() -> None:
    named = [
        path.relative_to(SWITCH).as_posix()
        for path in modules(SWITCH)
        if f'"{RECORDS_FILE}"' in path.read_text(encoding="utf-8")
    ]
    assert named == ["records/schema.py"]


@pytest.mark.parametrize("path", modules(SWITCH), ids=lambda p: p.relative_to(SWITCH).as_posix())
def test_only_records_opens_sqlite(path: Path) -> None:
    if path.is_relative_to(RECORDS) or path in OTHER_DATABASES:
        return
    tree = source.parse(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "connect":
            assert not (isinstance(node.value, ast.Name) and "sqlite" in node.value.id), (
                f"{path.name}:{node.lineno} opens SQLite; the calls database is switch/records/'s"
            )


@pytest.mark.parametrize("path", modules(RECORDS), ids=lambda p: p.name)
def test_records_import_no_cli_web_or_mqtt(path: Path) -> None:
    tree = source.parse(path)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"click", "aiohttp", "aiomqtt"}, path.name


_SQL = re.compile(r"\b(FROM|INTO|UPDATE)\s+(calls|legs|voicemails)\b")  # our SQL is upper case


@pytest.mark.parametrize("path", modules(SWITCH), ids=lambda p: p.relative_to(SWITCH).as_posix())
def test_no_sql_on_the_calls_tables_outside_records(path: Path) -> None:
    if path.is_relative_to(RECORDS):
        return
    for node in ast.walk(source.parse(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not _SQL.search(node.value), f"{path.name}:{node.lineno}: {node.value[:60]!r}"
