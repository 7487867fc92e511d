"""Stopping a child process the edge started (Kamailio, rtpengine)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM to a child; SIGKILL to its process group if it is not gone within ``grace`` s."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


__all__ = ["terminate"]
