"""Suite-wide test policy.

Tests marked ``peer`` talk to real SIPp, Kamailio, baresip, Mosquitto and Chromium
processes on a shared 2-core machine, and some assert timing (a ban within 1.5 s, a worker
back within 5 s, a load that fits a pool). Such a test gets one more run when it fails:
a real fault fails twice, a scheduling hiccup of a loaded machine does not. Pure tests
never rerun. pytest's summary lists every rerun ("R"), so a test that starts to need it
shows up in CI output.
"""

from __future__ import annotations

import pytest

PEER_RERUNS = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("peer") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=PEER_RERUNS, reruns_delay=1))
