"""Fixtures for the edge tests: a Kamailio edge and SIPp stand-ins, all under tmp_path.

``start_edge(**overrides)`` renders, checks and starts a Kamailio with its runtime dir,
database and ctl socket under ``tmp_path``; ``start(process)`` starts a peer. Everything
started is stopped when the test ends, edge last (phones un-REGISTER on SIGTERM).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from switch.edge import Edge, EdgeSettings
from tests.edge.peers import Process, free_port

EdgeFactory = Callable[..., Awaitable[Edge]]
Starter = Callable[[Process], Awaitable[Process]]

needs_kamailio = pytest.mark.skipif(
    shutil.which("kamailio") is None or shutil.which("sipp") is None,
    reason="kamailio and sipp (Debian kamailio, sip-tester) are needed",
)


def edge_settings(tmp_path: Path, **overrides: Any) -> EdgeSettings:
    values: dict[str, Any] = {
        "listen": f"127.0.0.1:{free_port()}",
        "domain": "office",
        "db_path": tmp_path / "edge" / "edge.db",
        "run_dir": tmp_path / "edge",
        "shm_mb": 128,  # tests carry a few calls; 512 MB x many parallel runs is wasteful
        "children": 2,
        "ping_interval": 1,
        "log_level": 2,
    }
    values.update(overrides)
    return EdgeSettings.model_validate(values)


@pytest.fixture
async def start(start_edge: EdgeFactory) -> AsyncIterator[Starter]:
    # Depends on ``start_edge`` so that peers are stopped before the edge (fixture order).
    started: list[Process] = []

    async def run(process: Process) -> Process:
        started.append(process)
        return await process.start()

    try:
        yield run
    finally:
        for process in reversed(started):
            await process.stop()


@pytest.fixture
async def start_edge(tmp_path: Path) -> AsyncIterator[EdgeFactory]:
    edges: list[Edge] = []

    async def run(**overrides: Any) -> Edge:
        edge = Edge(edge_settings(tmp_path, **overrides))
        edges.append(edge)
        await edge.start()
        return edge

    try:
        yield run
    finally:
        for edge in edges:
            await edge.stop()
