"""``python -m bench [NAME ...] [-- ARGS]``: run the benchmarks (all by default)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

Main = Callable[[list[str]], int]


def available() -> dict[str, str]:
    """Benchmark name -> module name, for every bench module with a ``main``.

    Found from the source text, so that listing imports nothing (and helper modules such
    as the SIPp wrapper, which have no ``main``, are not mistaken for benchmarks).
    """
    here = Path(__file__).resolve().parent
    return {
        info.name: f"bench.{info.name}"
        for info in pkgutil.iter_modules([str(here)])
        if not info.ispkg
        and not info.name.startswith(("_", "gen_"))
        and "\ndef main(" in (here / f"{info.name}.py").read_text(encoding="utf-8")
    }


def run(argv: list[str]) -> int:
    names, rest = argv, []
    if "--" in argv:
        names, rest = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    benchmarks = available()
    if names in (["-h"], ["--help"], ["--list"]):
        print("benchmarks:", ", ".join(sorted(benchmarks)))
        print("usage: python -m bench [NAME ...] [-- ARGS passed to each]")
        return 0
    unknown = [name for name in names if name not in benchmarks]
    if unknown:
        print(
            f"bench: unknown benchmark {unknown[0]!r}; available: {', '.join(sorted(benchmarks))}"
        )
        return 2
    status = 0
    for name in names or sorted(benchmarks):
        module = importlib.import_module(benchmarks[name])
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"== {name}")
        status = max(status, cast(Main, entry)(list(rest)))
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
