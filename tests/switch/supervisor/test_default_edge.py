"""The default ``rufweiche run`` (one worker) has the Kamailio edge in front (issue 15).

Real peers: the switch as a subprocess (Kamailio + one pjsua2 worker), SIPp for a burst of
60 INVITEs at full speed, a raw UDP REGISTER.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.sipp import Sipp, load
from tests.helpers.switch import plan_text

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(90)]


def register(port: int, source: str = "127.0.0.3") -> str | None:
    """One REGISTER without credentials; the status line of the answer, or None."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        local = sock.getsockname()[1]
        message = (
            f"REGISTER sip:office SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{local};branch=z9hG4bK{call_id[:12]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:anna@office>;tag={call_id[:8]}\r\n"
            "To: <sip:anna@office>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 REGISTER\r\n"
            f"Contact: <sip:anna@{source}:{local}>\r\n"
            "Expires: 60\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(2)
        sock.sendto(message.encode(), (LOOPBACK, port))
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return None
    return data.decode(errors="replace").split("\r\n", 1)[0]


def test_default_run_answers_register_and_survives_a_burst_of_60_invites(
    tmp_path: Path, make_switch: Any
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", "200", "-timeout", "50"])
    (plans / "test.yaml").write_text(plan_text(f"sip:desk@{desk.address}", "burst"))
    # The default but for one line: the burst comes from the line's own address, a named
    # trunk (nothing is trusted by default, issue 14: an unnamed source that floods is
    # banned by pike, which tests/switch/edge/test_hardening.py shows).
    settings = tmp_path / "settings.yaml"
    settings.write_text('edge: {trunk_sources: ["127.0.0.1/32"]}\n')
    switch = make_switch(plans, "--settings", str(settings), bare=False)
    health = switch.health()
    edge = health["detail"]["edge"]
    assert edge["running"], health
    worker_before = switch.worker()["pid"]
    assert worker_before

    # The registrar answers (a challenge: the phone must authenticate), not silence.
    answer = register(switch.sip_port)
    assert answer is not None, "REGISTER to the default run got no answer"
    assert answer.startswith("SIP/2.0 401"), answer

    # 60 ordinary INVITEs at full speed (SIPp -r 1000). The edge paces the worker.
    calls = load(tmp_path, switch.sip_port, 60, 1000, 500, "uac_via_edge.xml")
    desk.start()
    try:
        calls.start()
        calls.wait(60)
    finally:
        desk.stop()
    time.sleep(1)
    assert switch.proc is not None
    assert switch.proc.poll() is None, "supervisor alive"
    after = switch.health()
    assert after["detail"]["edge"]["running"], after
    assert after["detail"]["edge"]["pid"] == edge["pid"], "Kamailio was not restarted"
    os.kill(edge["pid"], 0)
    assert switch.worker()["pid"] == worker_before, "the worker never died"
    assert switch.worker()["ready"]
    answered = [c for c in switch.calls() if c["outcome"] == "answered"]
    refused = calls.received("SIP/2.0 503")
    assert answered, "some of the burst is carried"
    assert all("paced" in m or "busy" in m for m in refused), refused[:1]
    assert len(answered) + len(refused) >= 55, (len(answered), len(refused))
