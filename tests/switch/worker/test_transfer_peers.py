"""Transfers and calls out against real SIP peers: SIPp callers, transferors, targets, trunk.

The assistant's phone (SIPp, uas_answer_refer.xml) answers a forwarded call and sends a
REFER; the worker carries the transfer out itself: the SIPp caller ends up bridged with
the SIPp target, or back with the assistant when the target is busy (recall).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp, start_bound
from tests.helpers.transfer import (
    BUSINESS_E164,
    CALLER,
    assert_put_through,
    caller,
    dtmf_pcaps,
    mueller_plan,
    mueller_worker,
    ok,
    sipp,
    transferor,
)
from tests.helpers.worker import WorkerProcess, completed_call, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]


def test_blind_transfer_by_refer_bridges_the_caller_to_the_target(tmp_path: Path) -> None:
    assistant = transferor(tmp_path, "jan.mobile")
    mobile = sipp(tmp_path, "mobile", "uas_answer.xml", "-rtp_echo")
    worker = mueller_worker(tmp_path, mobile, assistant)
    call = caller(tmp_path, worker, 4000)
    with completed_call(worker, call, assistant, mobile, timeout=25):
        assert "REFER DECLINED" in assistant.log_lines()  # pjsua must not dial it itself
        assert "GOT BYE" in assistant.log_lines()  # the switch let the assistant go
        assert "GOT BYE" in mobile.log_lines()  # the caller's hang-up reached the target
        invite = mobile.received("INVITE")[0]
        assert re.search(rf'^From: "Tischlerei Müller: {re.escape(CALLER)}"', invite, re.M)
        record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")["record"]
        assert record["outcome"] == "answered"
        assert_put_through(
            record,
            by="heimbuero.assistant",
            to="jan.mobile",
            outcome="answered",
            answered_by="jan.mobile",
        )
        assert worker.alive()


def test_a_busy_target_recalls_the_assistant(tmp_path: Path) -> None:
    assistant = transferor(tmp_path, "jan.desk")
    desk = sipp(tmp_path, "desk", "uas_busy.xml")
    worker = mueller_worker(tmp_path, desk, assistant)
    call = caller(tmp_path, worker, 3000)
    with completed_call(worker, call, assistant, desk, timeout=25):
        assert "GOT BYE" in assistant.log_lines()  # the caller's BYE, after the recall
        record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")["record"]
        assert record["transfer_outcome"] == "recalled"
        assert record["answered_by"] == "heimbuero.assistant"
        assert record["outcome"] == "answered"
        assert record["hung_up_by"] == "caller"


def test_a_desk_phone_calls_out_through_the_trunk_as_the_business(tmp_path: Path) -> None:
    trunk = sipp(tmp_path, "trunk", "uas_answer.xml")
    port = free_port()
    desk = sipp(
        tmp_path,
        "desk",
        "uac_call.xml",
        f"{LOOPBACK}:{port}",
        "-s",
        "01711234567",
        "-key",
        "caller",
        "desk",
        "-d",
        "500",
    )
    # The desk's From is sip:desk@<its address>: the device the plan names.
    worker = mueller_worker(tmp_path, desk, trunk=trunk.address, port=port)
    refused = Sipp(
        tmp_path,
        "premium",
        "uac_final.xml",
        [f"{LOOPBACK}:{port}", "-s", "09001234567", "-key", "caller", "desk", "-m", "1"],
        port=desk.port,
    )
    with running(trunk, worker, desk, refused):
        start_bound(trunk)
        worker.start()
        desk.start()
        ok(desk, trunk)
        invite = trunk.received("INVITE")[0]
        assert invite.startswith("INVITE sip:+491711234567@")
        assert re.search(rf"^P-Asserted-Identity: <sip:{re.escape(BUSINESS_E164)}@", invite, re.M)
        assert re.search(rf"^From: .*<sip:{re.escape(BUSINESS_E164)}@", invite, re.M)
        refused.start()
        refused.wait(20)
        answer = refused.received("SIP/2.0 403")[0]
        assert re.search(r'^Reason: SIP;cause=403;text="Premium numbers not allowed', answer, re.M)
        assert len(trunk.received("INVITE")) == 1  # the 0900 call never left
        records = worker.records("ended")
        outbound = next(r for r in records if r["called"] == "+491711234567")
        assert outbound["direction"] == "outbound"
        assert outbound["tenant"] == "mueller"
        assert outbound["presented"] == BUSINESS_E164


def test_the_mobile_keys_a_transfer_code_as_rfc4733_events(tmp_path: Path) -> None:
    # The mobile cannot send a REFER (it is reached over the trunk): it keys *2301#
    # during the call, as RFC 4733 telephone events on its RTP stream.
    dtmf_pcaps(tmp_path, ["star", "2", "3", "0", "1", "pound"])
    mobile = sipp(tmp_path, "mobile", "uas_answer_dtmf_transfer.xml")
    desk = sipp(tmp_path, "desk", "uas_answer.xml", "-rtp_echo")
    dialplan = write_plan(
        tmp_path / "plan.yaml",
        mueller_plan(
            {"mobile": f"sip:mobile@{mobile.address}", "desk": f"sip:301@{desk.address}"},
            rules="  - {name: mobile first, then: [{ring: [jan.mobile], timeout: 10s}]}",
        ),
    )
    worker = WorkerProcess(tmp_path, [dialplan])
    call = caller(tmp_path, worker, 6000)
    with completed_call(worker, call, mobile, desk, timeout=25):
        assert "KEYED" in mobile.log_lines()
        assert "GOT BYE" in mobile.log_lines()  # the switch let the mobile go
        assert "GOT BYE" in desk.log_lines()  # the caller's hang-up reached the desk
        assert desk.received("INVITE")[0].startswith("INVITE sip:301@")
        record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")["record"]
        assert_put_through(
            record, by="jan.mobile", to="301", outcome="answered", answered_by="jan.desk"
        )
