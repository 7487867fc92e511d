"""``media_bypass`` (issue 16): on by default exactly where the edge runs rtpengine."""

from __future__ import annotations

from typing import Any

import pytest

from switch.supervisor.settings import Settings
from switch.supervisor.topology import worker_specs


def _flag(**keys: Any) -> bool:
    specs = worker_specs(Settings(**keys))
    return all("--media-bypass" in spec.extra_args for spec in specs)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, False),  # loopback edge: no rtpengine, no bypass
        ({"sip": "100.64.0.1:5060"}, True),  # media leaves the host: rtpengine runs
        ({"sip": "100.64.0.1:5060", "media_bypass": False}, False),
        ({"media_bypass": True}, True),
        ({"sip": "100.64.0.1:5060", "edge_mode": "external"}, False),
        ({"sip": "100.64.0.1:5060", "edge": {"media_relay": {"mode": "off"}}}, False),
        ({"edge": {"listen": "100.64.0.1:5060"}}, True),
    ],
)
def test_the_workers_get_media_bypass_where_rtpengine_runs(
    keys: dict[str, Any], expected: bool
) -> None:
    settings = Settings(**keys)
    assert settings.media_bypass_enabled is expected
    assert _flag(**keys) is expected
