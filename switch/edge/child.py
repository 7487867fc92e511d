"""What the edge's child processes (Kamailio, rtpengine) share: state, log tail, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Self


class ChildProcess:
    """The pid and liveness of a child started with ``asyncio.create_subprocess_exec`` (the
    subclass sets ``_process`` in ``start``): :class:`~switch.edge.process.Edge`,
    :class:`~switch.edge.rtpengine.MediaRelay`. ``async with child:`` starts and stops it."""

    _process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a child's log file ("" when there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def terminate(proc: asyncio.subprocess.Process, grace: float, *, group: bool = True) -> None:
    """SIGTERM to a child; SIGKILL to its process group (``group``: it was started with
    ``start_new_session=True``), else to the child alone, if it is not gone within ``grace`` s."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            await proc.wait()


__all__ = ["ChildProcess", "log_tail", "terminate"]
