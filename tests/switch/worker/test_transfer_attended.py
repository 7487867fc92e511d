"""Attended transfer (REFER with Replaces, RFC 3891) in-process on the scripted SIP side.

The assistant has the caller (call A) and has called Jan's desk through the switch
(call B); a REFER with Replaces joins the caller with Jan's leg. Against SIPp:
tests/switch/worker/test_transfer_attended_peers.py.
"""

from __future__ import annotations

from switch.call.calllog import CallPhase
from switch.worker.attended import replaced_call_id
from tests.helpers.fakesip import Answer, DriverRig
from tests.helpers.transfer import mueller_plan

BUSINESS = "+49301234560"
DESK = "sip:201@10.0.0.1:5060"
ASSISTANT = "sip:assistant@10.0.0.3:5060"

PLAN = mueller_plan(
    {"desk": DESK},
    ASSISTANT,
    rules="  - {name: office, then: [{ring: [heimbuero.assistant], timeout: 20s}]}",
)


def two_calls(rig: DriverRig) -> tuple[int, int, int, int]:
    """(caller, assistant's leg of A, assistant's call B, desk's leg of B), all bridged."""
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    a_leg = rig.sip.handle_of(ASSISTANT)
    b_call = rig.sip.invite("201", from_uri=ASSISTANT)
    rig.run()
    desk = rig.sip.handle_of(DESK)
    assert ("bridge", b_call, desk) in rig.sip.log
    return caller, a_leg, b_call, desk


def test_refer_with_replaces_on_the_first_call_joins_the_caller_with_jan() -> None:
    rig = DriverRig(PLAN, {ASSISTANT: [Answer()], DESK: [Answer()]})
    caller, a_leg, b_call, desk = two_calls(rig)
    rig.sip.refer(a_leg, "201", replaces=f"call-{b_call}@fake;to-tag=x;from-tag=y")
    rig.run()
    assert rig.sip.did("bridge")[-1] == ("bridge", caller, desk)
    assert ("bye", a_leg) in rig.sip.log  # the assistant's leg of A
    assert ("bye", b_call) in rig.sip.log  # the assistant's call B
    assert ("bye", desk) not in rig.sip.log  # Jan stays, with the caller
    assert len(rig.sip.did("dial")) == 2  # nobody is dialled for the join
    (b_record,) = rig.records(CallPhase.ENDED)
    assert b_record.direction == "outbound"
    assert b_record.hung_up_by == "transfer"
    rig.sip.caller_hangs_up(caller)
    rig.run()
    assert ("bye", desk) in rig.sip.log
    a_record = rig.records(CallPhase.ENDED)[-1]
    assert a_record.called == BUSINESS
    assert a_record.transferred_by == "heimbuero.assistant"
    assert a_record.transferred_to == "jan.desk"
    assert a_record.transfer_outcome == "attended"
    assert a_record.answered_by == "jan.desk"  # the minutes count for Jan
    desk_leg = next(leg for leg in a_record.legs if leg.target == "jan.desk")
    assert desk_leg.media is not None  # the leg's end (and RTCP) came to call A


def test_refer_on_the_consultation_call_replacing_the_first_joins_them_too() -> None:
    rig = DriverRig(PLAN, {ASSISTANT: [Answer()], DESK: [Answer()]})
    caller, a_leg, b_call, desk = two_calls(rig)
    # The assistant REFERs call B (she is its caller) with Replaces naming call A's dialog:
    # the Call-ID of the switch's own INVITE to her phone.
    rig.sip.refer(b_call, "+491715550100", replaces=f"out-{a_leg}@fake;to-tag=a;from-tag=b")
    rig.run()
    assert rig.sip.did("bridge")[-1] == ("bridge", caller, desk)
    assert ("bye", a_leg) in rig.sip.log
    assert ("bye", b_call) in rig.sip.log
    assert rig.records(CallPhase.ENDED)[0].hung_up_by == "transfer"


def test_replaces_naming_a_dialog_of_another_worker_is_refused_and_both_calls_stay() -> None:
    rig = DriverRig(PLAN, {ASSISTANT: [Answer()], DESK: [Answer()]})
    caller, a_leg, b_call, desk = two_calls(rig)
    rig.sip.refer(a_leg, "201", replaces="elsewhere@other-worker;to-tag=x;from-tag=y")
    rig.run()
    assert rig.sip.did("bye") == []
    assert rig.sip.did("bridge")[-1] == ("bridge", b_call, desk)
    assert rig.records(CallPhase.ENDED) == []
    rig.sip.caller_hangs_up(caller)
    rig.run()
    a_record = next(r for r in rig.records(CallPhase.ENDED) if r.called == BUSINESS)
    assert a_record.transfer_outcome == "failed"
    assert a_record.answered_by == "heimbuero.assistant"


def test_replacing_a_call_with_itself_is_refused() -> None:
    rig = DriverRig(PLAN, {ASSISTANT: [Answer()], DESK: [Answer()]})
    caller, a_leg, _, _ = two_calls(rig)
    rig.sip.refer(a_leg, "201", replaces=f"call-{caller}@fake")
    rig.run()
    assert rig.sip.did("bye") == []


def test_the_call_id_of_a_replaces_value() -> None:
    assert replaced_call_id("abc@host;to-tag=1;from-tag=2") == "abc@host"
    assert replaced_call_id(" abc@host ") == "abc@host"
