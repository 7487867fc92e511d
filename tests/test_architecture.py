"""The import direction is switch -> presence -> rules, and rules/ stays free of I/O.

Checked on the source with ``ast`` so that a lazy import inside a function is caught too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import source

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {
    "asyncio",
    "socket",
    "sqlite3",
    "pjsua2",
    "aiomqtt",
    "aiosqlite",
    "prometheus_client",
    "aiohttp",
    "subprocess",
    "threading",
    "watchfiles",
}
# What each package may not import (its own layer or any above it).
FORBIDDEN = {
    "rules": {"presence", "switch"} | IO_MODULES,
    "presence": {"switch", "pjsua2"},
}


def imported_modules(path: Path) -> set[str]:
    tree = source.parse(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imported_modules_sees_nested_and_from_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import os.path\nfrom socket import socket\ndef f():\n    import asyncio\n")
    assert imported_modules(sample) == {"os", "socket", "asyncio"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward_or_io(package: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imported_modules(path) & FORBIDDEN[package]
    }
    assert not offenders, sorted(offenders)


def test_only_switch_pjsua_imports_pjsua2() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("rules", "presence", "switch", "bench")
        for path in (ROOT / package).rglob("*.py")
        if "pjsua2" in imported_modules(path) and (ROOT / "switch" / "pjsua") not in path.parents
    ]
    assert not offenders


# -- switch/: the rules of switch/__init__.py ------------------------------------------------

SWITCH = ROOT / "switch"


def switch_files(package: str) -> list[Path]:
    return sorted((SWITCH / package).rglob("*.py"))


def full_imports(path: Path) -> set[str]:
    """Every module ``path`` imports, dotted in full (``from a.b import c`` gives ``a.b``
    and ``a.b.c``: c may be a module)."""
    tree = source.parse(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(files: list[Path], forbidden: set[str]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported_modules(path) & forbidden
    )


def test_switch_call_is_pure() -> None:
    """switch/call: the call flow, events, records — no I/O of any kind, and from switch
    only the error tree and itself."""
    io = {"asyncio", "threading", "socket", "sqlite3", "pjsua2", "click", "aiohttp"}
    assert not offenders(switch_files("call"), io | {"aiosqlite", "aiomqtt", "subprocess"})
    upward = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in switch_files("call")
        for name in full_imports(path)
        if name.startswith("switch")
        and name != "switch"
        and not name.startswith(("switch.errors", "switch.call"))
    )
    assert not upward


def test_switch_worker_has_no_asyncio() -> None:
    """The worker is a pjsua2 process with threads: no event loop, no HTTP, no database."""
    assert not offenders(switch_files("worker"), {"asyncio", "aiohttp", "aiosqlite"})


def test_only_switch_cli_imports_click() -> None:
    found = [
        str(path.relative_to(ROOT))
        for package in ("rules", "presence", "switch")
        for path in (ROOT / package).rglob("*.py")
        if "click" in imported_modules(path) and (SWITCH / "cli") not in path.parents
    ]
    assert not found


CALLS_DB = re.compile(r"calls\.sqlite3|calls\.db\b")


def test_only_switch_records_opens_the_calls_database() -> None:
    """One owner of the calls database: outside switch/records/ no module imports sqlite3 or
    aiosqlite (the edge's own Kamailio database, switch/edge/database.py, and presence's
    presence.sqlite3 are other files, named here) and none names the calls file, except the
    places that hand its path to switch/records/ (the supervisor and the CLI's defaults)."""
    other_databases = {SWITCH / "edge" / "database.py", ROOT / "presence" / "store.py"}
    sql = sorted(
        str(path.relative_to(ROOT))
        for package in ("switch", "presence")
        for path in (ROOT / package).rglob("*.py")
        if imported_modules(path) & {"sqlite3", "aiosqlite"}
        and (SWITCH / "records") not in path.parents
        and path not in other_databases
    )
    assert not sql
    handing_the_path = {
        SWITCH / "supervisor" / "app.py",
        SWITCH / "cli" / "__init__.py",  # `rufweiche report --db` (moving to cli/report.py)
        SWITCH / "cli" / "report.py",
        SWITCH / "cli" / "privacy.py",
    }
    named = sorted(
        str(path.relative_to(ROOT))
        for path in SWITCH.rglob("*.py")
        if CALLS_DB.search(path.read_text(encoding="utf-8"))
        and (SWITCH / "records") not in path.parents
        and path not in handing_the_path
    )
    assert not named


def test_switch_edge_and_records_do_not_import_the_cli() -> None:
    # switch/edge/__main__.py is the one door from a package into its command.
    found = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for package in ("edge", "records", "call", "worker", "control", "supervisor", "web")
        for path in switch_files(package)
        if path.name != "__main__.py"
        for name in full_imports(path)
        if name.startswith("switch.cli")
    )
    assert not found


def test_switch_weekview_is_pure() -> None:
    """switch/weekview.py (the week grid and its SVG, for the CLI and the owner's page) does
    no I/O and imports nothing of switch but the error tree."""
    path = SWITCH / "weekview.py"
    io = {"asyncio", "threading", "socket", "sqlite3", "click", "aiohttp", "subprocess", "os"}
    assert not offenders([path], io | {"aiosqlite", "aiomqtt", "pjsua2", "pathlib"})
    upward = sorted(
        name
        for name in full_imports(path)
        if name.startswith("switch") and not name.startswith("switch.errors")
    )
    assert not upward
