"""baresip 1.0 as the assistant's phone blind-transfers a SIPp caller (``/transfer``).

This is how the issue was found: baresip's REFER made pjsua dial the Refer-To itself and
the caller was dropped. Now the worker declines the REFER (603, no NOTIFY progress: see
switch/pjsua/calls.py) and carries the transfer out: the caller ends up bridged to the
SIPp mobile, audio flows both ways, and the record names the transfer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.baresip import Baresip, Tshark, needs_baresip
from tests.helpers.processes import running
from tests.helpers.transfer import BUSINESS_E164, CALLER, ok, plan, sipp
from tests.helpers.worker import WorkerProcess

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.timeout(60),
    needs_baresip,
]


def test_baresip_transfer_command_puts_the_caller_through(tmp_path: Path) -> None:
    assistant = Baresip(tmp_path, "assistant", "assistant")
    mobile = sipp(tmp_path, "mobile", "uas_answer.xml", "-rtp_echo")
    worker_plan = plan(
        tmp_path, {"mobile": mobile.address, "assistant": f"127.0.0.1:{assistant.sip_port}"}
    )
    worker = WorkerProcess(tmp_path, [worker_plan])
    # A baresip caller: it sends its 440 Hz sine all along, so there is audio to count.
    call = Baresip(tmp_path, "caller", CALLER)
    shark = Tshark(tmp_path, "sip", f"udp port {assistant.sip_port}")
    with running(mobile, worker):
        try:
            shark.start()
            assistant.start()
            mobile.start()
            mobile.wait_bound()
            worker.start()
            call.start("-t", "7", "-e", f"/dial sip:{BUSINESS_E164}@127.0.0.1:{worker.port}")
            assistant.event("CALL_ESTABLISHED", timeout=10)
            time.sleep(0.5)  # some audio with the assistant first
            assistant.command("transfer", f"sip:jan.mobile@127.0.0.1:{worker.port}")
            failed = assistant.event("TRANSFER_FAILED", timeout=5)  # our 603 (no NOTIFY)
            assert failed["param"] == "603 Decline"
            assert call.wait(20) == 0  # hangs up after 7 s (-t): about 6 s with the mobile
            ok(mobile)
        finally:
            call.stop()
            assistant.stop()
            shark.stop()
        # The assistant's dialog was ended while the caller talked on (baresip 1.0 sent
        # its own BYE after the 603 in some runs; otherwise the switch ends it when the
        # target answers): a BYE on the assistant's port, answered 200.
        sip = shark.read("-Y", "sip.CSeq.method == BYE", "-T", "fields", "-e", "sip.Status-Code")
        assert "200" in sip.split(), sip
        assert "GOT BYE" in mobile.log_lines()  # the caller's hang-up reached the target
        record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")["record"]
        assert record["answered_by"] == "jan.mobile"
        assert record["transferred_by"] == "heimbuero.assistant"
        assert record["transferred_to"] == "jan.mobile"
        assert record["transfer_outcome"] == "answered"
        mobile_leg = next(leg for leg in record["legs"] if leg["target"] == "jan.mobile")
        # RTP both ways across the new bridge: the caller's sine reached the SIPp mobile,
        # which echoes it, and that came back through the switch to the caller.
        assert mobile_leg["media"]["rx_packets"] > 150, mobile_leg["media"]
        tx, rx = call.packets()
        assert tx > 250, tx
        assert rx > 150, rx
        print(f"baresip caller: {tx} RTP packets sent, {rx} received; mobile leg {mobile_leg}")
