"""What /proc says about a process tree: its pids, CPU ticks and PSS (Linux only).

The benchmarks that measure a switch's CPU and memory (bench/concurrency.py,
bench/queue_wait.py) read them here; a process gone meanwhile counts 0.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

TICK: Final = os.sysconf("SC_CLK_TCK")


def parent(pid: int) -> int:
    """The parent pid of ``pid`` (/proc/PID/stat); 0 when it is gone."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return 0


def descendants(root: int) -> list[int]:
    """``root`` and every descendant (from the parent links in /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            children.setdefault(parent(int(entry)), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (:data:`TICK` a second)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of ``pid`` in KiB (smaps_rollup); (0, 0) when it is gone."""
    found = {"Pss:": 0, "Rss:": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in found:
                found[key] = int(line.split()[1])
    return found["Pss:"], found["Rss:"]


def pss_kb(pid: int) -> int:
    """The proportional set size of ``pid`` in KiB (smaps_rollup)."""
    return memory_kb(pid)[0]


__all__ = ["TICK", "cpu_ticks", "descendants", "memory_kb", "parent", "pss_kb"]
