"""The queue members' codes ``*45``..``*48`` (issue 19) are classified by the one feature
classifier, like every ``*`` code: a typed :class:`QueueMemberCode` only from a ``sip:``
phone a plan lists (a person's or the service's device), 403 from anywhere else."""

from __future__ import annotations

import pytest

from rules import DialPlanSet, load_plan_text
from switch.call.features import (
    QueueMemberCode,
    Refuse,
    SetPresence,
    classify_feature,
    is_feature_code,
    phone_owner,
)

PLAN_TEXT = """
tenant: t
name: T
numbers: ["+49 30 1234560"]
people:
  jan: {devices: {desk: "sip:jan@office", mobile: "tel:+491701234567"}}
service:
  anna: {name: Anna, devices: {desk: "sip:anna@office"}}
feature_codes: {"*31": away, "*45": available}
rules: [{name: r, then: [{ring: jan}]}]
"""
FORBIDDEN = Refuse(403, "Forbidden")


def plans() -> DialPlanSet:
    return DialPlanSet([load_plan_text(PLAN_TEXT, "<t>")])


def classify(code: str, from_uri: str, from_user: str | None = None) -> object:
    return classify_feature(code, from_uri, plans(), {}, lambda _: "*99", from_user=from_user)


@pytest.mark.parametrize(
    ("code", "action"), [("*45", "login"), ("*46", "logout"), ("*47", "pause"), ("*48", "unpause")]
)
def test_each_code_from_the_services_phone(code: str, action: str) -> None:
    assert is_feature_code(code)
    assert classify(code, "sip:anna@office") == QueueMemberCode("anna", action)


def test_the_member_is_the_phones_sip_user_as_the_stack_parsed_it() -> None:
    # From with a display name and parameters; the SIP stack's user part names the member.
    assert classify("*47", '"Anna" <sip:anna@10.0.0.5:5060>;tag=x', "anna") == QueueMemberCode(
        "anna", "pause"
    )
    assert classify("*46", "sip:jan@office") == QueueMemberCode("jan", "logout")  # a person


def test_a_member_code_wins_over_a_plans_presence_code_of_the_same_digits() -> None:
    assert classify("*45", "sip:jan@office") == QueueMemberCode("jan", "login")
    assert isinstance(classify("*31", "sip:jan@office"), SetPresence)


@pytest.mark.parametrize(
    ("from_uri", "from_user"),
    [
        ("sip:+491715550100@trunk.example", None),  # a caller over the trunk
        ("sip:anna@203.0.113.9", "bert"),  # the stack's user is no phone of a plan
        ("sip:bert@203.0.113.9", None),
        ("sip:+491701234567@trunk.example", None),  # jan's mobile number: spoofable, no phone
        ("<sip:203.0.113.9>", None),  # no user at all
    ],
)
def test_from_anywhere_else_403(from_uri: str, from_user: str | None) -> None:
    assert classify("*47", from_uri, from_user) == FORBIDDEN


def test_other_star_codes_are_not_member_codes() -> None:
    assert classify("*49", "sip:jan@office") == Refuse(404, "Unknown Feature Code")
    assert classify("*450", "sip:jan@office") == Refuse(404, "Unknown Feature Code")


def test_phone_owner_sip_devices_only() -> None:
    p = plans()
    owner = phone_owner("sip:anna@office", "anna", p, {})
    assert owner is not None
    assert owner[1] == "anna"
    assert phone_owner("sip:jan@10.0.0.7", "jan", p, {"office": "10.0.0.7"}) is not None
    assert phone_owner("tel:+491701234567", "+491701234567", p, {}) is None
