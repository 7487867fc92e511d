"""tests/helpers/switch.py: a switch that never gets ready is not left running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.processes import wait_alive
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


def test_wait_alive_answers_the_first_true_check_and_fails_when_the_process_ends() -> None:
    answers = iter([0, "", "ready"])
    assert wait_alive(None, lambda: next(answers), 5, "ready", lambda: "log", 0.01) == "ready"
    with pytest.raises(AssertionError, match=r"timed out waiting for never:\nlog"):
        wait_alive(None, lambda: False, 0.05, "never", lambda: "log", 0.01)
    gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    gone.wait()
    with pytest.raises(AssertionError, match=r"exited \(3\) waiting for ready:\nlog"):
        wait_alive(gone, lambda: False, 5, "ready", lambda: "log", 0.01)
