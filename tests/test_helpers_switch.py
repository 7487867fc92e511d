"""tests/helpers/switch.py: a switch that never gets ready is not left running."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers.switch import Switch, plan_text, write


@pytest.mark.peer
def test_a_switch_that_never_gets_ready_is_stopped_with_its_group(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    write(plans / "t.yaml", plan_text("sip:jan@127.0.0.1:5"))
    switch = Switch(tmp_path, plans, "--workers", "1").start()
    assert switch.proc is not None
    group = switch.proc.pid
    with pytest.raises(AssertionError, match="never"):
        switch.started(lambda: False, 0.5, "never")
    assert switch.proc.poll() is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)  # raises once no process of the group is left
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("processes of the switch's group (edge, workers) were left running")
