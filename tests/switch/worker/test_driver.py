"""The CallDriver in-process against a scripted SIP side (tests/helpers/fakesip.py).

What the SIPp tests (tests/switch/worker/test_calls.py, ...) show with real peers, here in
milliseconds: ringing, failover, the first 200 wins, capacity, feature codes, the record.
"""

from __future__ import annotations

from typing import Any

import pytest

from switch.call.admission import RETRY_AFTER_S
from switch.call.calllog import CallPhase
from switch.call.quality import mos_for
from switch.control import messages as control
from tests.helpers.fakesip import (
    BUSINESS,
    DESK,
    MEDIA,
    MOBILE,
    PARALLEL,
    PHONE,
    SEQUENTIAL,
    Answer,
    DriverRig,
    Fail,
    FakeSip,
    HangUp,
    Ring,
    Script,
    Unavailable,
    plan_text,
)


class Rig(DriverRig):
    """A driver on the test plan's ``steps``, its fake SIP side and what it sent."""

    def __init__(self, steps: str, script: Script, *, max_legs: int = 4) -> None:
        super().__init__(plan_text(steps), script, max_legs=max_legs)


def dialled(sip: FakeSip) -> list[Any]:
    return [entry[1] for entry in sip.did("dial")]


def test_sequential_ring_times_out_then_the_second_target_answers() -> None:
    rig = Rig(SEQUENTIAL, {DESK: [Ring()], MOBILE: [Ring(), Answer(), HangUp()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    assert dialled(rig.sip) == [DESK]
    assert ("provisional", caller, 180) in rig.sip.log
    rig.time_passes(5.1)
    assert dialled(rig.sip) == [DESK, MOBILE]
    assert ("cancel", rig.sip.handle_of(DESK)) in rig.sip.log
    assert ("bridge", caller, rig.sip.handle_of(MOBILE)) in rig.sip.log
    record = rig.ended()
    assert record.outcome == "answered"
    assert record.hung_up_by == "callee"
    assert record.answered_by == "jan.mobile"
    assert [(leg.target, leg.status, leg.step) for leg in record.legs] == [
        ("jan.desk", 487, 0),
        ("jan.mobile", 200, 1),
    ]
    assert [r.answered_by for r in rig.records(CallPhase.ANSWERED)] == ["jan.mobile"]


def test_parallel_ring_first_answer_wins_and_the_others_are_cancelled() -> None:
    rig = Rig(PARALLEL, {DESK: [Ring(), Ring()], MOBILE: [Ring(), Answer()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    desk, mobile = rig.sip.handle_of(DESK), rig.sip.handle_of(MOBILE)
    assert rig.sip.did("bridge") == [("bridge", caller, mobile)]
    assert rig.sip.did("cancel") == [("cancel", desk)]
    assert rig.sip.did("provisional") == [("provisional", caller, 180)]  # relayed once
    rig.sip.caller_hangs_up(caller)
    rig.run()
    assert ("bye", mobile) in rig.sip.log
    record = rig.ended()
    assert record.outcome == "answered"
    assert record.hung_up_by == "caller"


def test_a_200_that_crosses_our_cancel_is_ended() -> None:
    # The desk wins; the mobile's 200 is on its way when we CANCEL it. Its dialog exists
    # all the same and must get a BYE (RFC 3261 §9.1), never a bridge.
    rig = Rig(PARALLEL, {DESK: [Answer()], MOBILE: [Ring(), Answer()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    desk, mobile = rig.sip.handle_of(DESK), rig.sip.handle_of(MOBILE)
    assert rig.sip.did("bridge") == [("bridge", caller, desk)]
    assert rig.sip.log.index(("cancel", mobile)) < rig.sip.log.index(("bye", mobile))
    assert rig.sip.legs[mobile].ended
    assert not rig.sip.legs[desk].ended
    assert rig.records(CallPhase.ANSWERED)[0].answered_by == "jan.desk"


def test_a_reject_releases_the_reservation() -> None:
    rig = Rig(SEQUENTIAL, {DESK: [Fail(486)], MOBILE: [Fail(603, "Decline")]})
    rig.sip.invite(BUSINESS)
    assert rig.driver.budget.reserved == 0
    rig.run(rounds=1)
    assert rig.driver.budget.reserved == 0  # the first Dial used the reserved leg
    rig.run()
    record = rig.ended()
    assert record.outcome == "missed"
    assert rig.driver.budget.reserved == 0
    assert rig.driver.calls == {}


def test_a_call_rejected_by_the_plan_holds_no_leg() -> None:
    rig = Rig("      - {reject: {status: 486}}", {})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    assert [entry[:3] for entry in rig.sip.did("reject")] == [("reject", caller, 486)]
    assert rig.ended().outcome == "rejected"
    assert rig.driver.budget.reserved == 0


def test_a_failing_invite_handler_answers_500(monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(SEQUENTIAL, {})

    def broken(*_args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("switch.worker.driver.decide", broken)
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    rejects = rig.sip.did("reject")
    assert [entry[:3] for entry in rejects] == [("reject", caller, 500)]
    assert rig.driver.calls == {}


def test_full_worker_answers_503_with_retry_after() -> None:
    rig = Rig(SEQUENTIAL, {DESK: [Ring()]}, max_legs=3)
    first = rig.sip.invite(BUSINESS)
    rig.run()
    assert rig.sip.legs_in_use == 2  # the caller's leg and the desk's
    second = rig.sip.invite(BUSINESS)
    rig.run()
    (reject,) = rig.sip.did("reject")
    assert reject[1:4] == (second, 503, "Service Unavailable")
    headers = reject[4]
    assert isinstance(headers, tuple)
    assert ("Retry-After", str(RETRY_AFTER_S)) in headers
    assert not rig.sip.legs[first].ended
    (record,) = rig.records(CallPhase.ENDED)
    assert record.outcome == "rejected"
    assert record.sip_status == 503


def test_unknown_number_gets_404() -> None:
    rig = Rig(SEQUENTIAL, {})
    caller = rig.sip.invite("+493099999999")
    rig.run()
    assert [entry[:3] for entry in rig.sip.did("reject")] == [("reject", caller, 404)]


def test_feature_code_changes_presence() -> None:
    rig = Rig(SEQUENTIAL, {})
    caller = rig.sip.invite("*31", from_uri=PHONE)
    rig.run()
    assert ("answer", caller) in rig.sip.log
    assert control.PresenceSet("t", "jan", "away") in rig.sent
    assert str(rig.driver.presence["t"]["jan"]) == "away"
    rig.time_passes(1.5)
    assert ("bye", caller) in rig.sip.log
    assert rig.records(CallPhase.ENDED) == []  # a feature code is no call


def test_feature_code_from_an_unknown_device_gets_404() -> None:
    rig = Rig(SEQUENTIAL, {})
    caller = rig.sip.invite("*31", from_uri="sip:999@10.9.9.9")
    rig.run()
    assert [entry[:4] for entry in rig.sip.did("reject")] == [
        ("reject", caller, 404, "Unknown Device")
    ]
    assert not [m for m in rig.sent if isinstance(m, control.PresenceSet)]


def test_every_leg_with_media_gets_a_mos_when_it_ends() -> None:
    """Issue 13: the E-model ran nowhere, so every record's MOS was empty."""
    rig = Rig(SEQUENTIAL, {DESK: [Ring(), Answer(), HangUp()]})
    rig.sip.invite(BUSINESS)
    rig.run()
    record = rig.ended()
    expected = mos_for(MEDIA)
    assert expected is not None
    assert 4.0 < expected < 4.5
    assert record.media is not None
    assert record.media.mos == expected  # the caller's leg
    (leg,) = record.legs
    assert leg.media is not None
    assert leg.media.mos == expected


def test_no_call_slot_for_the_target_gives_503_for_another_worker_not_480() -> None:
    """pjsua refused the outbound leg (PJ_ETOOMANY after its slot wait): the edge must try
    the call elsewhere; the plan's next step (the mobile) is not rung from here."""
    rig = Rig(SEQUENTIAL, {DESK: Unavailable(503), MOBILE: [Ring(), Answer()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    assert dialled(rig.sip) == []
    (reject,) = rig.sip.did("reject")
    assert reject[1:4] == (caller, 503, "Service Unavailable")
    headers = reject[4]
    assert isinstance(headers, tuple)
    assert ("Retry-After", str(RETRY_AFTER_S)) in headers
    record = rig.ended()
    assert (record.outcome, record.sip_status, record.hung_up_by) == ("rejected", 503, "switch")


def test_a_target_the_endpoint_cannot_address_still_moves_the_plan_on() -> None:
    rig = Rig(SEQUENTIAL, {DESK: Unavailable(404), MOBILE: [Ring(), Answer()]})
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    assert dialled(rig.sip) == [MOBILE]
    assert ("bridge", caller, rig.sip.handle_of(MOBILE)) in rig.sip.log
