"""Fixtures for the edge tests: a Kamailio edge and SIPp stand-ins (helpers.edge) in tmp_path.

``start_edge(**overrides)`` renders, checks and starts a Kamailio with its runtime dir,
database and ctl socket under ``tmp_path``; ``start(process)`` starts a peer; ``worker_port``
is the port of a SIPp stand-in worker that answers every call; ``alice_secrets`` a secrets
file with one phone user. Everything started is stopped when the test ends, edge last (phones
un-REGISTER on SIGTERM).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switch.edge import Edge
from switch.edge.credentials import add_user
from tests.helpers.edge import PASSWORD, EdgeFactory, Starter, edge_settings, sipp_worker
from tests.helpers.ports import free_port
from tests.helpers.processes import Process


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


@pytest.fixture
async def worker_port(tmp_path: Path, start: Starter) -> int:
    """The port of a SIPp stand-in worker (``sipp_worker``), started before the edge."""
    port = free_port(tcp=True)
    await start(sipp_worker(tmp_path, port))
    return port


@pytest.fixture
def alice_secrets(tmp_path: Path) -> Path:
    """``tmp_path/secrets.yaml`` with one user: alice, password ``PASSWORD``, realm office."""
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", PASSWORD, realm="office")
    return secrets
