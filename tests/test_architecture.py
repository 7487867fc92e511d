"""The import direction is switch -> presence -> rules, and rules/ stays free of I/O.

Checked on the source with ``ast`` so that a lazy import inside a function is caught too.
"""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

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
    # Parsed on a fresh thread: CPython 3.11's AST builder checks a per-thread recursion
    # counter that a RecursionError earlier in the same thread (the rules fuzz tests parse
    # deeply nested YAML) can leave off ("AST constructor recursion depth mismatch").
    with ThreadPoolExecutor(max_workers=1) as pool:
        tree = pool.submit(ast.parse, path.read_text(encoding="utf-8"), str(path)).result()
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
