"""The console's "put through" in the worker (issue 18): a TransferCall control message
starts the same blind transfer a REFER does; nothing happens to a call that is not bridged.

Driven in-process against the scripted SIP side; the real thing with Chromium and SIPp:
tests/switch/desk/test_console_putthrough.py.
"""

from __future__ import annotations

from switch.control import messages as control
from tests.helpers.fakesip import Answer, DriverRig, HangUp, Ring
from tests.helpers.transfer import mueller_plan

BUSINESS = "+49301234560"
MOBILE = "sip:mobile@10.0.0.2:5060"
ASSISTANT = "sip:assistant@10.0.0.3:5060"
PLAN = mueller_plan(
    {"desk": "sip:desk@10.0.0.1:5060", "mobile": MOBILE},
    ASSISTANT,
    rules="  - {name: office, then: [{ring: [heimbuero.assistant], timeout: 20s}]}",
)


def call_id_of(rig: DriverRig) -> str:
    (call,) = rig.driver.calls.values()
    return call.recorder.call_id


def test_put_through_bridges_the_caller_with_jan() -> None:
    rig = DriverRig(PLAN, {ASSISTANT: [Answer()], MOBILE: [Ring(), Answer(), HangUp()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    assistant = rig.sip.handle_of(ASSISTANT)
    assert ("bridge", caller, assistant) in rig.sip.log
    message = control.decode(control.encode(control.TransferCall(call_id_of(rig), "jan.mobile")))
    assert isinstance(message, control.TransferCall)
    assert rig.driver.outbound.console_transfer(message.call_id, message.target, "anna")
    rig.run()
    mobile = rig.sip.handle_of(MOBILE)
    assert ("bridge", caller, mobile) in rig.sip.log
    assert ("bye", assistant) in rig.sip.log
    record = rig.ended()
    assert record.transferred_by == "heimbuero.assistant"
    assert record.answered_by == "jan.mobile"
    assert record.transfer_outcome == "answered"


def test_a_ringing_or_unknown_call_is_not_put_through() -> None:
    rig = DriverRig(PLAN, {ASSISTANT: [Ring()]})
    rig.sip.invite(BUSINESS)
    rig.run()
    assert not rig.driver.outbound.console_transfer(call_id_of(rig), "jan.mobile", "anna")
    assert not rig.driver.outbound.console_transfer("no-such-call", "jan.mobile", "anna")
    rig.run()
    assert [leg.uri for leg in rig.sip.legs.values() if not leg.inbound] == [ASSISTANT]
