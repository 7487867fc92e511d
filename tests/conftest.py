"""Suite-wide test policy.

Tests marked ``peer`` talk to real SIPp, Kamailio, baresip, Mosquitto and Chromium
processes on a shared 2-core machine, and some assert timing (a ban within 1.5 s, a worker
back within 5 s, a load that fits a pool). Such a test gets one more run when it fails:
a real fault fails twice, a scheduling hiccup of a loaded machine does not. Pure tests
never rerun. pytest's summary lists every rerun ("R"), so a test that starts to need it
shows up in CI output.

A failing test's report is built with the collector paused: pytest parses the failing
source with ``ast.parse``, and on CPython 3.11 before 3.11.8 (gh-106905) a collection that
runs a finaliser meanwhile (an unclosed socket's or event loop's ResourceWarning, an
error under ``filterwarnings = error``) raises ``SystemError: AST constructor recursion
depth mismatch`` out of pytest itself: an INTERNALERROR that ends the whole session
instead of one failed test (tests/helpers/source.py does the same for our own parses).
"""

from __future__ import annotations

import gc
from collections.abc import Generator
from typing import Any

import pytest

PEER_RERUNS = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("peer") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=PEER_RERUNS, reruns_delay=1))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return (yield)
    finally:
        if enabled:
            gc.enable()
