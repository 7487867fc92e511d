"""``*21*<number>#`` / ``#21#`` from a person's own phone (issue 18): what the code means,
and that the number passes the outbound permission classes (never 0900)."""

from __future__ import annotations

import pytest

from rules import DialPlanSet, load_plan_text
from switch.call.features import (
    Refuse,
    SetForward,
    SetPresence,
    check_forward,
    classify_feature,
    is_feature_code,
    parse_forward,
)
from switch.call.outbound import parse_dialled

PLAN_TEXT = """
tenant: t
name: T
numbers: ["+49 30 1234560"]
people:
  jan: {devices: {desk: "sip:jan@office"}}
  lea: {devices: {desk: "sip:lea@office"}}
feature_codes: {"*31": away}
outbound: {people: {lea: [local, national]}}
rules: [{name: r, then: [{ring: jan}]}]
"""


def plans() -> DialPlanSet:
    return DialPlanSet([load_plan_text(PLAN_TEXT, "<t>")])


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("*21*01701234567#", (True, "01701234567")),
        ("*21*+491701234567#", (True, "+491701234567")),
        ("*21*0170%2312#", None),
        ("*21*01701234567%23", (True, "01701234567")),
        ("#21#", (True, None)),
        ("%2321%23", (True, None)),
        ("*21*#", None),
        ("*21*0170", None),
        ("*31", None),
    ],
)
def test_parse_forward(code: str, expected: tuple[bool, str | None] | None) -> None:
    assert parse_forward(code) == expected


def test_forward_codes_are_feature_codes_not_calls_out() -> None:
    assert is_feature_code("#21#")
    assert is_feature_code("*21*01701234567#")
    assert not is_feature_code("01701234567")
    assert parse_dialled("#21#") is None


def test_classify_from_the_persons_own_phone() -> None:
    p = plans()
    code = lambda _plan: "*99"  # noqa: E731
    feature = classify_feature("*21*01701234567#", "sip:jan@office", p, {}, code)
    assert isinstance(feature, SetForward)
    assert (feature.person, feature.number) == ("jan", "+491701234567")
    cleared = classify_feature("#21#", "sip:jan@office;transport=udp", p, {}, code)
    assert isinstance(cleared, SetForward)
    assert cleared.number is None
    assert isinstance(classify_feature("*31", "sip:jan@office", p, {}, code), SetPresence)
    assert classify_feature("#21#", "sip:nobody@office", p, {}, code) == Refuse(
        404, "Unknown Device"
    )


def test_the_target_must_pass_the_outbound_classes() -> None:
    plan = load_plan_text(PLAN_TEXT, "<t>")
    assert check_forward(plan, "jan", "0301234567") == "+49301234567"
    assert check_forward(plan, "jan", "09001234567") == Refuse(
        403, "Forwarding to premium numbers not allowed"
    )
    assert check_forward(plan, "jan", "110") == Refuse(
        403, "Forwarding to emergency numbers not allowed"
    )
    assert check_forward(plan, "lea", "01701234567") == Refuse(
        403, "Forwarding to mobile numbers not allowed for lea"
    )
    assert check_forward(plan, "jan", "+12125551234") == Refuse(
        403, "Forwarding to international numbers not allowed for jan"
    )
    refused = classify_feature("*21*09001234567#", "sip:jan@office", plans(), {}, lambda _: "")
    assert isinstance(refused, Refuse)
    assert refused.status == 403
