"""End to end (issue 18): the day/night override from the desk phone lights a BLF key.

``rufweiche run`` with its Kamailio edge; a SIPp "desk phone" (jan's device) dials ``*40``
("calls to the service now") and ``*41`` ("back to normal") at the worker; a SIPp watcher
(the BLF key of a phone) SUBSCRIBEs to jan through the edge with digest auth and gets a
NOTIFY (PIDF) for every change: available → away → available.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from presence import pidf
from rules.presence import PresenceState as S
from switch.edge.credentials import add_user
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp
from tests.helpers.switch import Switch

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(100)]
PRESENCE = "/api/v1/tenants/tt/people/jan/presence"

SUBSCRIBE = """
      SUBSCRIBE sip:tt.jan@office SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@office>;tag=[pid]W[call_number]
      To: <sip:tt.jan@office>
      Call-ID: [call_id]
      CSeq: {cseq} SUBSCRIBE
      Contact: <sip:alice@[local_ip]:[local_port]>
      {auth}
      Max-Forwards: 70
      Event: presence
      Accept: application/pidf+xml
      Expires: 120
      Content-Length: 0
"""
NOTIFY = """  <recv request="NOTIFY"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
"""


def watcher(tmp: Path, edge_port: int, notifies: int) -> Sipp:
    """The BLF key: SUBSCRIBE with digest auth through the edge, take ``notifies`` NOTIFYs."""
    scenario = tmp / "blf.xml"
    scenario.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        f'<scenario name="blf">\n  <send retrans="500"><![CDATA[\n'
        f"{SUBSCRIBE.format(cseq=1, auth='')}\n  ]]></send>\n"
        '  <recv response="407" auth="true"/>\n  <send retrans="500"><![CDATA[\n'
        f"{SUBSCRIBE.format(cseq=2, auth='[authentication]')}\n  ]]></send>\n"
        '  <recv response="202" optional="true" next="notify"/>\n  <recv response="200"/>\n'
        f'  <label id="notify"/>\n{NOTIFY * notifies}</scenario>\n',
        encoding="utf-8",
    )
    return Sipp(
        tmp,
        "blf",
        scenario,
        [f"{LOOPBACK}:{edge_port}", "-m", "1", "-timeout", "40",
         "-au", "alice", "-ap", "s3cret", "-auth_uri", "tt.jan@office"],
    )  # fmt: skip


def notify_states(message_file: Path) -> list[S]:
    try:
        text = message_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    states = []
    for chunk in re.split(r"^-{20,}.*$", text, flags=re.MULTILINE):
        message = chunk.split(":\n", 1)[-1].lstrip()
        if "message received" in chunk and message.startswith("NOTIFY "):
            body = re.split(r"\r?\n\r?\n", message, maxsplit=1)[-1].strip()
            states.append(pidf.parse(body).state)
    return states


def wait_for(check: Any, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.05)


def dial(tmp: Path, worker_sip: str, name: str, code: str, port: int) -> None:
    phone = Sipp(
        tmp, name, "uac_wait_bye.xml", [worker_sip, "-s", code, "-m", "1", "-timeout", "15"],
        port=port,
    )  # fmt: skip
    phone.cmd += ["-key", "caller", "jan"]
    with running(phone.start()):
        assert phone.wait(15) == 0, phone.diagnostics()


def test_star_40_and_41_from_the_desk_phone_light_the_blf_key(
    tmp_path: Path, make_switch: Any
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
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
    worker_sip = switch.worker()["sip"]
    blf = watcher(tmp_path, switch.sip_port, 3)
    message_file = blf.messages
    with running(blf.start()):
        wait_for(lambda: notify_states(message_file) == [S.AVAILABLE], "the first NOTIFY")
        dial(tmp_path, worker_sip, "night", "*40", jan_port)
        wait_for(lambda: switch.get(PRESENCE)["state"] == "away", "jan away")
        wait_for(lambda: notify_states(message_file)[-1:] == [S.AWAY], "NOTIFY away")
        dial(tmp_path, worker_sip, "day", "*41", jan_port)
        wait_for(lambda: notify_states(message_file) == [S.AVAILABLE, S.AWAY, S.AVAILABLE],
                 "NOTIFY available")  # fmt: skip
    assert switch.get(PRESENCE)["source"] == "phone"
