"""A real softphone (baresip) as the assistant's phone behind the worker.

Caller: baresip A (a sine tone) dials the business number at the worker; the dial plan
sends the call to baresip B, the Heimbüro assistant, which answers on its own. B must see
the business in the caller's display name, the Diversion and History-Info headers must
reach it, and RTP must flow both ways through the worker's conference bridge.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.baresip import Baresip, Tshark, needs_baresip
from tests.helpers.processes import running
from tests.helpers.worker import WorkerProcess, ended, write_plan

pytestmark = [
    pytest.mark.peer,
    pytest.mark.timeout(60),
    needs_baresip,
]

CALLER = "+491715550100"
CONV_ROW = re.compile(r"^\S+:(\d+)\s+<->\s+\S+:(\d+)\s+(\d+) \d+ \w+\s+(\d+) \d+ \w+", re.MULTILINE)


def rtp_counts(conv: str, phone_ports: range) -> tuple[int, int]:
    """(packets to the phone, packets from the phone) in ``tshark -z conv,udp`` output."""
    to_phone = from_phone = 0
    for match in CONV_ROW.finditer(conv):
        a, b, b_to_a, a_to_b = (int(x) for x in match.groups())
        if a in phone_ports and b not in phone_ports:
            to_phone, from_phone = to_phone + b_to_a, from_phone + a_to_b
        elif b in phone_ports and a not in phone_ports:
            to_phone, from_phone = to_phone + a_to_b, from_phone + b_to_a
    return to_phone, from_phone


def test_assistant_softphone_sees_business_and_audio_flows_both_ways(tmp_path: Path) -> None:
    assistant = Baresip(tmp_path, "assistant", "assistant1")
    caller = Baresip(tmp_path, "caller", CALLER)
    plan = write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: tischlerei-test
name: Tischlerei Müller
numbers: ["+49 30 1234560"]
service:
  heimbuero: {{name: Heimbüro, devices: {{assistant: "{assistant.uri}"}}}}
rules:
  - name: the service answers
    then:
      - {{ring: [heimbuero.assistant], timeout: 10s}}
""",
    )
    worker = WorkerProcess(tmp_path, [plan])
    rtp = f"portrange {assistant.rtp_base}-{assistant.rtp_base + 9}"
    capture = Tshark(tmp_path, "assistant", f"udp port {assistant.sip_port} or udp {rtp}")
    with running(worker):
        try:
            assistant.start()
            worker.start()
            capture.start()
            dial = f"/dial sip:+49301234560@127.0.0.1:{worker.port}"
            caller.start("-t", "4", "-e", dial, listen=False)
            assert caller.wait(15) == 0
            established = assistant.event("CALL_ESTABLISHED")
            assert established["peerdisplayname"] == f"Tischlerei Müller: {CALLER}"
            assert established["peeruri"].startswith(f"sip:{CALLER}@")
            assistant.event("CALL_CLOSED")
        finally:
            caller.stop()
            assistant.stop()
            capture.stop()

        sip = capture.read(
            "-d", f"udp.port=={assistant.sip_port},sip", "-Y", 'sip.Method == "INVITE"', "-O", "sip"
        )
        assert "Diversion: <sip:+49301234560@" in sip
        assert "reason=unconditional;counter=1" in sip
        assert "History-Info: <sip:+49301234560@" in sip
        assert f"P-Asserted-Identity: <sip:{CALLER}@" in sip

        # Both phones counted each other's audio: A's tone reached B and B's reached A.
        caller_tx, caller_rx = caller.packets()
        assistant_tx, assistant_rx = assistant.packets()
        assert min(caller_tx, caller_rx, assistant_tx, assistant_rx) > 40, (
            caller.packets(),
            assistant.packets(),
        )
        # On the wire towards the assistant: packets both ways between it and the worker.
        conv = capture.read("-q", "-z", "conv,udp")
        to_phone, from_phone = rtp_counts(conv, range(assistant.rtp_base, assistant.rtp_base + 10))
        assert to_phone > 40, conv
        assert from_phone > 40, conv

        record = worker.wait_for(ended)["record"]
        assert record["answered_by"] == "heimbuero.assistant"
        assert record["answered_by_service"] is True
        assert record["legs"][0]["media"]["rx_packets"] > 40
        assert record["media"]["rx_packets"] > 40
