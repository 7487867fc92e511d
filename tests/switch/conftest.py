"""Fixtures of the switch tests: ``make_switch`` runs ``python -m switch run`` (helpers.switch)
on the dial plans written into ``plans``; ``pg_schema`` is a PostgreSQL schema of its own for
a synchronous test (helpers.pg)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.netns import Net, network
from tests.helpers.pg import drop_schema, reachable, run_sync, unique_schema
from tests.helpers.switch import Switch


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    """``tmp_path/plans``: the dial-plan directory of the switch under test, empty."""
    folder = tmp_path / "plans"
    folder.mkdir()
    return folder


@pytest.fixture
def make_switch(tmp_path: Path) -> Iterator[Callable[..., Switch]]:
    started: list[Switch] = []

    def make(dialplans: Path, *extra: str, bare: bool | None = None) -> Switch:
        switch = Switch(tmp_path, dialplans, *extra, bare=bare).start()
        started.append(switch)
        return switch

    try:
        yield make
    finally:
        for switch in started:
            if switch.proc is not None and switch.proc.poll() is None:
                switch.stop()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema name nobody uses on the machine's PostgreSQL (the test is skipped when it is
    not reachable); dropped with everything in it at the end. For synchronous tests: the
    async ones use ``helpers.pg.fresh_schema``."""
    why = run_sync(reachable())
    if why:
        pytest.skip(why)
    name = unique_schema()
    yield name
    run_sync(drop_schema(name))


@pytest.fixture
def net(request: pytest.FixtureRequest) -> Iterator[Net]:
    """The namespaces of helpers.netns (the router forgets UDP bindings after 30 s), with
    the office namespace when the test module sets ``NET_OFFICE = True``."""
    with network(udp_timeout=30, office=getattr(request.module, "NET_OFFICE", False)) as built:
        yield built
