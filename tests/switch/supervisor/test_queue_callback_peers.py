"""A queue's callback placed, against real peers (issue 19).

``rufweiche run`` with the Kamailio edge and one queue; the caller is a SIPp UAC through
the edge that waits (its only member paused), presses the callback digit (SIP INFO), hears
the confirmation and is hung up by the switch. When the member is back (unpaused over
HTTP), the switch rings her first (a SIPp UAS member) and, once she answered, calls the
caller back through the trunk (a SIPp UAS) with the business's number in From and
P-Asserted-Identity. The API and the metrics show the callback. Builders:
tests/helpers/queues.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.helpers import queues
from tests.helpers.processes import running
from tests.helpers.rtp import RtpSink
from tests.helpers.sipp import BUSINESS_E164, Sipp, target

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(110)]
CUSTOMER = "+491715550701"


def test_a_callback_rings_the_member_then_the_caller_through_the_trunk(tmp_path: Path) -> None:
    anna = target(tmp_path, "anna", "uas_member.xml", "-d", "2000", calls=1, timeout=60)
    trunk = Sipp(tmp_path, "trunk", "uas_answer.xml", ["-m", "1", "-timeout", "60"])
    settings_file = queues.settings(
        tmp_path, queues.members_yaml(("anna", anna, "")), wrapup="0", callback_digit='"5"'
    )
    trunk.start()
    trunk.wait_bound()
    with settings_file.open("a") as out:
        out.write(f'trunk: "{trunk.address}"\n')
    switch = queues.start(tmp_path, settings_file)
    sink = RtpSink()
    digit = queues.digit_caller(tmp_path, switch, CUSTOMER, sink)
    try:
        with running(switch, anna, trunk, digit):
            anna.start()
            anna.wait_bound()
            queues.post_json(switch, "/api/v1/queues/heimbuero/members/anna", {"action": "pause"})
            digit.start()
            assert digit.wait(30) == 0, digit.diagnostics()  # the switch hung up after the prompt
            (request,) = switch.get("/api/v1/queues")["callbacks"]
            assert request["state"] == "waiting", request
            assert anna.received("INVITE") == []  # paused: nobody rang yet
            assert trunk.received("INVITE") == []
            queues.post_json(switch, "/api/v1/queues/heimbuero/members/anna", {"action": "unpause"})
            # anna talks 2 s and hangs up; the switch ends the customer's leg (BYE to the trunk)
            assert anna.wait(30) == 0, anna.diagnostics() + switch.output()[-4000:]
            assert trunk.wait(20) == 0, trunk.diagnostics()
            done = switch.wait_until(
                lambda: (c := switch.get("/api/v1/queues"))["callbacks"][0]["state"] == "reached"
                and c,
                10,
                "the callback reported done",
            )
            metrics = switch.text("/metrics")
            records = switch.calls()
    finally:
        sink.close()
    # The caller heard the confirmation after pressing 5: sound after the request was taken.
    offset = time.time() - time.monotonic()
    heard = queues.voiced_seconds(sink, since=request["requested_wall"] - offset)
    assert heard > 1.0, heard
    # Anna rang first (shown as the business's callback), then the trunk got the INVITE.
    (member_invite,) = anna.received("INVITE")
    assert re.search(r'^From: "Rückruf Tischlerei Test" <sip:\+4930', member_invite, re.M | re.I)
    (invite,) = trunk.received("INVITE")
    assert invite.startswith(f"INVITE sip:{CUSTOMER}@"), invite
    assert re.search(rf"^From: .*<sip:{re.escape(BUSINESS_E164)}@", invite, re.M), invite
    assert re.search(rf"^P-Asserted-Identity: <sip:{re.escape(BUSINESS_E164)}@", invite, re.M), (
        invite
    )
    assert any("MEMBER ANSWERED" in line for line in anna.log_lines())
    # The record, the API and the metrics show the callback.
    entry = done["callbacks"][0]
    assert (entry["member"], entry["number"], entry["tenant"]) == ("anna", CUSTOMER, "tischlerei")
    (record,) = records
    assert record["final_action"] == "callback"
    figures = done["queues"]["heimbuero"]["figures"]["by_tenant"]["tischlerei"]
    assert figures["callback"] == 1
    assert queues.queue_calls_metric(metrics, "callback", "tischlerei") == 1
    assert 'rufweiche_queue_member_calls_total{member="anna",queue="heimbuero"} 1.0' in metrics
    members = done["queues"]["heimbuero"]["members"]
    assert members["anna"]["status"] == "available"  # wrap-up 0: free again
