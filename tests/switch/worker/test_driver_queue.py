"""The worker's side of a queue (issue 19), in-process against the scripted SIP side: the
caller is answered and joins, the supervisor's offer rings the member, the 200 bridges."""

from __future__ import annotations

import time

from switch.call.calllog import CallPhase
from switch.control import messages as control
from switch.worker.seam import LegDigit
from tests.helpers.fakesip import BUSINESS, Answer, DriverRig, Fail, HangUp, Ring

MEMBER = "sip:anna@10.0.0.5:5060"
PLAN = f"""
tenant: t
name: Tischlerei Test
numbers: ["{BUSINESS}"]
service:
  anna: {{name: Anna, devices: {{desk: "sip:anna@10.0.0.5"}}}}
rules:
  - name: queue
    then: [{{queue: heimbuero}}]
"""


def offer(call_id: str) -> control.QueueOffer:
    return control.QueueOffer(call_id, "anna", MEMBER, "heimbuero.anna", 15.0)


def test_the_caller_joins_and_the_offered_member_is_bridged() -> None:
    rig = DriverRig(PLAN, {MEMBER: [Ring(), Answer(), HangUp()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    assert not rig.sip.legs[caller].answered_by_us  # not before the queue took it
    (join,) = rig.of(control.QueueJoin)
    assert isinstance(join, control.QueueJoin)
    assert join == control.QueueJoin("heimbuero", f"call-{caller}@fake", "t")
    assert rig.sip.did("dial") == []  # nobody rings until the supervisor says so
    rig.driver.queueing.on_message(control.QueueUpdate(join.call_id, 1, 30.0, "5"))
    assert rig.sip.legs[caller].answered_by_us  # the queue took it: answered, it hears
    rig.driver.queueing.on_message(offer(join.call_id))
    rig.run()
    assert [d[1] for d in rig.sip.did("dial")] == [MEMBER]
    assert rig.of(control.QueueResult) == [
        control.QueueResult("heimbuero", join.call_id, "anna", answered=True)
    ]
    assert rig.sip.did("bridge")
    (ended,) = [
        m.record
        for m in rig.of(control.CallReport)
        if isinstance(m, control.CallReport) and m.phase == CallPhase.ENDED
    ]
    assert ended.outcome == "answered"
    assert ended.answered_by == "heimbuero.anna"


def test_a_busy_member_is_reported_and_max_wait_ends_the_call() -> None:
    rig = DriverRig(PLAN, {MEMBER: [Fail(486, "Busy Here")]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    call_id = f"call-{caller}@fake"
    rig.driver.queueing.on_message(offer(call_id))
    rig.run()
    assert rig.of(control.QueueResult) == [
        control.QueueResult("heimbuero", call_id, "anna", answered=False)
    ]
    rig.driver.queueing.on_message(control.QueueGiveUp(call_id, "max_wait"))
    rig.run()
    assert rig.sip.legs[caller].ended  # no overflow in this plan: the default final
    rig.driver.queueing.on_message(control.QueueGiveUp("gone@fake", "max_wait"))  # ignored


def test_member_feature_codes_reach_the_supervisor() -> None:
    rig = DriverRig(PLAN, {})
    caller = rig.sip.invite("*47", from_uri="sip:anna@10.0.0.5")
    rig.run()
    assert rig.of(control.QueueMember) == [control.QueueMember("anna", "pause")]
    assert rig.sip.legs[caller].answered_by_us
    rig.driver.fire_timers(now=time.monotonic_ns() + 2_000_000_000)
    assert rig.sip.legs[caller].ended


def test_member_codes_from_the_trunk_are_refused() -> None:
    # A caller over the trunk (a number, no phone of a plan) cannot pause a member, even
    # when its From user is a member's name: 403, nothing reaches the supervisor.
    rig = DriverRig(PLAN, {})
    for n, (code, uri) in enumerate(
        [("*47", "sip:+491715550100@trunk.example"), ("*46", "sip:bert@203.0.113.9")]
    ):
        caller = rig.sip.invite(code, from_uri=uri)
        rig.run()
        assert ("reject", caller, 403, "Forbidden", ()) in rig.sip.log, n
    assert rig.of(control.QueueMember) == []


def test_the_callback_digit_from_the_caller() -> None:
    rig = DriverRig(PLAN, {})
    caller = rig.sip.invite(BUSINESS, caller="+491715550100")
    rig.run()
    call_id = f"call-{caller}@fake"
    rig.driver.queueing.on_message(control.QueueUpdate(call_id, 2, 90.0, "5"))
    rig.driver.on_leg_event(LegDigit(caller, "5", time.monotonic_ns()))
    rig.run()
    assert rig.of(control.QueueCallback) == [
        control.QueueCallback("heimbuero", call_id, "t", "+491715550100")
    ]
