"""End to end (issue 18): the day/night override from the desk phone lights a BLF key.

``rufweiche run`` with its Kamailio edge; a SIPp "desk phone" (jan's device) dials ``*40``
("calls to the service now") and ``*41`` ("back to normal") at the worker; a SIPp watcher
(the BLF key of a phone) SUBSCRIBEs to jan through the edge with digest auth and gets a
NOTIFY (PIDF) for every change: available → away → available.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rules.presence import PresenceState as S
from switch.edge.credentials import add_user
from tests.helpers.blf import notify_states, write_watcher
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp, dial_code
from tests.helpers.switch import Switch

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(100)]
PRESENCE = "/api/v1/tenants/tt/people/jan/presence"


def watcher(tmp: Path, edge_port: int, notifies: int) -> Sipp:
    """The BLF key: SUBSCRIBE with digest auth through the edge, take ``notifies`` NOTIFYs."""
    scenario = write_watcher(tmp / "blf.xml", "tt.jan@office", "alice@office", notifies)
    return Sipp(
        tmp,
        "blf",
        scenario,
        [f"{LOOPBACK}:{edge_port}", "-m", "1", "-timeout", "40",
         "-au", "alice", "-ap", "s3cret", "-auth_uri", "tt.jan@office"],
    )  # fmt: skip


def wait_for(check: Any, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.05)


def test_star_40_and_41_from_the_desk_phone_light_the_blf_key(
    tmp_path: Path, plans: Path, make_switch: Any
) -> None:
    jan_port = free_port()
    (plans / "tt.yaml").write_text(
        'tenant: tt\nname: Tischlerei Test\nnumbers: ["+49 30 1234560"]\n'
        f'people: {{jan: {{name: Jan, devices: {{desk: "sip:jan@{LOOPBACK}:{jan_port}"}}}}}}\n'
        "rules: [{name: jan, then: [{ring: jan.desk}]}]\n",
        encoding="utf-8",
    )
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "alice", "s3cret", realm="office")
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        # No trunk: the watcher on 127.0.0.1 is a phone that authenticates (tests/helpers/
        # switch.py would otherwise name 127.0.0.1 the test trunk, which may only send INVITEs).
        f'edge: {{domain: office, secrets_file: "{secrets}", shm_mb: 128, children: 2, '
        "trunk_sources: []}\n",
        encoding="utf-8",
    )
    switch: Switch = make_switch(plans, "--settings", str(settings), bare=False)
    assert switch.health()["detail"]["edge"]["running"]
    worker_port = int(switch.worker()["sip"].rsplit(":", 1)[1])
    blf = watcher(tmp_path, switch.sip_port, 3)
    message_file = blf.messages
    with running(blf.start()):
        wait_for(lambda: notify_states(message_file) == [S.AVAILABLE], "the first NOTIFY")
        dial_code(tmp_path, worker_port, "*40", name="night", phone_port=jan_port)
        wait_for(lambda: switch.get(PRESENCE)["state"] == "away", "jan away")
        wait_for(lambda: notify_states(message_file)[-1:] == [S.AWAY], "NOTIFY away")
        dial_code(tmp_path, worker_port, "*41", name="day", phone_port=jan_port)
        wait_for(lambda: notify_states(message_file) == [S.AVAILABLE, S.AWAY, S.AVAILABLE],
                 "NOTIFY available")  # fmt: skip
    assert switch.get(PRESENCE)["source"] == "phone"
