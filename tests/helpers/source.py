"""Parse our own modules for the architecture and ownership tests.

CPython 3.11 before 3.11.8 (gh-106905) checks a per-thread recursion counter in the AST
builder that two things upset: a RecursionError caught earlier on the same thread (the
rules fuzz tests parse deeply nested YAML), and a garbage collection run during the parse
whose finaliser warns (``filterwarnings = error`` turns that into a raise). Either shows up
as ``SystemError: AST constructor recursion depth mismatch`` in a test that did nothing
wrong. So each file is parsed on a fresh thread with the collector paused.
"""

from __future__ import annotations

import ast
import functools
import gc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _parse_paused(text: str, filename: str) -> ast.Module:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text, filename)
    finally:
        if enabled:
            gc.enable()


@functools.cache
def parse(path: Path) -> ast.Module:
    """The module at ``path`` as an AST (cached: several tests walk the same files)."""
    text = path.read_text(encoding="utf-8")
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_parse_paused, text, str(path)).result()


__all__ = ["parse"]
