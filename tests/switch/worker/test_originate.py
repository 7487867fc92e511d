"""Click to call in the worker (switch/worker/originate.py), on the scripted SIP side.

The real thing (edge, a registered phone, a SIPp trunk, the HTTP API):
tests/switch/supervisor/test_click_to_call.py.
"""

from __future__ import annotations

from rules import DialPlanSet, load_plan_text
from switch.call.calllog import CallPhase
from switch.control import messages as control
from tests.helpers.fakesip import Answer, DriverRig, Fail, HangUp, Ring, Script
from tests.helpers.transfer import mueller_plan

DESK = "sip:desk@10.0.0.1:5060"
ASSISTANT = "sip:assistant@10.0.0.3:5060"
TRUNK = "10.0.0.99:5060"
CUSTOMER = f"sip:+49301234567@{TRUNK}"
SCHMIDT_CUSTOMER = f"sip:+4923315550123@{TRUNK}"

MUELLER = mueller_plan(
    {"desk": DESK},
    ASSISTANT,
    people='lehrling: {devices: {desk: "sip:lehrling@10.0.0.5:5060"}}',
    more="""
outbound:
  allow: []
  people: {jan: [national, mobile], heimbuero: [national]}
  calls_per_hour: 2
  ring_timeout: 20s
""",
    rules="  - {name: office, then: [{ring: [jan.desk], timeout: 20s}]}",
)

SCHMIDT = f"""
tenant: schmidt
name: Elektro Schmidt
numbers: ["+49 2331 55555-0"]
people:
  sven: {{devices: {{desk: "sip:sven@10.0.0.7:5060"}}}}
service:
  heimbuero:
    devices: {{assistant: "{ASSISTANT}"}}
outbound:
  business_code: "12"
  allow: [national]
rules:
  - name: sven
    then: [{{ring: sven.desk}}]
"""


class Rig(DriverRig):
    def __init__(self, script: Script, *, max_legs: int = 4) -> None:
        super().__init__(MUELLER, script, max_legs=max_legs, trunk=TRUNK)
        self.driver.plans = DialPlanSet([load_plan_text(MUELLER), load_plan_text(SCHMIDT)])

    def originate(self, ring: str, number: str, **kwargs: str) -> control.OriginateAnswer:
        tenant = kwargs.pop("tenant", "mueller")
        self.driver.originator.originate(
            control.Originate("req-1", tenant, ring, number, by="anna", **kwargs)
        )
        self.run()
        answers = [m for m in self.sent if isinstance(m, control.OriginateAnswer)]
        return answers[-1]

    def dialled(self) -> list[str]:
        return [str(d[1]) for d in self.sip.did("dial")]


def test_the_persons_phone_rings_first_then_the_customer_sees_the_business() -> None:
    rig = Rig({DESK: [Ring(), Answer()], CUSTOMER: [Ring(), Answer(), HangUp()]})
    answer = rig.originate("jan.desk", "030 1234567")
    assert (answer.status, answer.reason) == (202, "ringing")
    assert answer.call_id is not None
    assert rig.dialled() == [DESK, CUSTOMER]  # the customer only after jan answered
    first, second = rig.sip.did("dial")
    assert "Rückruf Tischlerei Müller" in str(first[2])
    assert "+49301234560" in str(second[2])  # From: the business
    assert ("P-Asserted-Identity", "<sip:+49301234560@127.0.0.1:5060>") in list(second[3])  # type: ignore[call-overload]
    desk, customer = (rig.sip.handle_of(DESK), rig.sip.handle_of(CUSTOMER))
    assert ("bridge", desk, customer) in rig.sip.log
    assert rig.sip.did("answer") == []  # jan's leg is ours: nobody is sent a 200
    record = rig.ended()
    assert record.call_id == answer.call_id
    assert (record.tenant, record.direction, record.outcome) == ("mueller", "outbound", "answered")
    assert record.presented == "+49301234560"
    assert record.called == "+49301234567"
    assert [leg.owner for leg in record.legs] == ["jan"]  # who placed it
    assert rig.driver.budget.reserved == 0


def test_nothing_goes_out_when_the_person_declines() -> None:
    rig = Rig({DESK: [Ring(), Fail(603, "Decline")]})
    assert rig.originate("jan", "0301234567").status == 202
    assert rig.dialled() == [DESK]
    record = rig.ended()
    assert (record.direction, record.outcome, record.legs) == ("outbound", "cancelled", [])
    assert (record.sip_status, record.reason) == (603, "abgelehnt")
    assert rig.driver.calls == {}
    assert rig.driver.budget.reserved == 0


def test_an_unanswered_phone_is_cancelled_after_the_ring_timeout() -> None:
    rig = Rig({DESK: [Ring()]})
    assert rig.originate("jan.desk", "0301234567").status == 202
    rig.time_passes(5)
    assert rig.sip.did("cancel") == []
    rig.time_passes(21)
    assert [c[1] for c in rig.sip.did("cancel")] == [rig.sip.handle_of(DESK)]
    assert rig.dialled() == [DESK]
    record = rig.ended()
    assert (record.outcome, record.reason) == ("cancelled", "nicht angenommen")
    assert rig.driver.budget.reserved == 0


def test_premium_and_unallowed_classes_are_refused_before_any_phone_rings() -> None:
    rig = Rig({})
    premium = rig.originate("jan.desk", "0900 1234567")
    assert (premium.status, premium.reason) == (403, "Premium numbers not allowed for jan")
    abroad = rig.originate("jan.desk", "+33 1 23456789")
    assert (abroad.status, abroad.reason) == (403, "International calls not allowed for jan")
    nothing = rig.originate("lehrling", "0301234567")
    assert nothing.status == 403
    assert rig.sip.did("dial") == []
    assert rig.records(CallPhase.STARTED) == []


def test_112_is_allowed_to_someone_without_any_class() -> None:
    rig = Rig({"sip:lehrling@10.0.0.5:5060": [Answer()], f"sip:112@{TRUNK}": [Answer()]})
    assert rig.originate("lehrling", "112").status == 202
    assert rig.dialled() == ["sip:lehrling@10.0.0.5:5060", f"sip:112@{TRUNK}"]


def test_the_calls_per_hour_limit_counts_and_is_reported() -> None:
    rig = Rig({DESK: [Fail(486)]})
    assert rig.originate("jan.desk", "0301234567").status == 202
    assert rig.originate("jan.desk", "0301234567").status == 202
    third = rig.originate("jan.desk", "0301234567")
    assert (third.status, third.reason) == (403, "Limit reached: 2 calls per hour")
    (hit,) = [m for m in rig.sent if isinstance(m, control.LimitHit)]
    assert (hit.tenant, hit.person, hit.call_class) == ("mueller", "jan", "national")
    assert len(rig.dialled()) == 2


def test_on_behalf_of_a_business_by_its_code_shows_that_business() -> None:
    rig = Rig({ASSISTANT: [Answer()], SCHMIDT_CUSTOMER: [Answer(), HangUp()]})
    answer = rig.originate("heimbuero.assistant", "02331 5550123", business="12")
    assert answer.status == 202
    _, second = rig.sip.did("dial")
    assert "+492331555550" in str(second[2])
    record = rig.ended()
    assert (record.tenant, record.direction, record.presented) == (
        "schmidt",
        "outbound",
        "+492331555550",
    )
    # a desk phone of mueller is not schmidt's service: refused
    assert rig.originate("jan.desk", "02331 5550123", business="12").status == 403


def test_a_full_worker_answers_503_and_rings_nobody() -> None:
    rig = Rig({DESK: [Ring()]}, max_legs=1)
    answer = rig.originate("jan.desk", "0301234567")
    assert answer.status == 503
    assert rig.sip.did("dial") == []


def test_unknown_people_and_phones_are_404() -> None:
    rig = Rig({})
    assert rig.originate("nobody", "0301234567").status == 404
    assert rig.originate("jan.fax", "0301234567").status == 404
    assert rig.originate("jan", "0301234567", tenant="elsewhere").status == 404
