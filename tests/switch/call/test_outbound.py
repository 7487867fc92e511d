"""switch/call/outbound.py: prefixes, classes, permissions, limits; the docs example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules import DialPlanSet, load_plan_text
from switch.call.outbound import (
    OutboundCall,
    OutboundLimits,
    Refused,
    classify_number,
    decide_outbound,
    parse_dialled,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "dialplan.md"


def docs_plan() -> DialPlanSet:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Transfer and outbound calls", 1)[1]
    (block,) = re.findall(r"```yaml\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    return DialPlanSet([load_plan_text(block, "docs/dialplan.md")])


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("112", "emergency"),
        ("110", "emergency"),
        ("09001234567", "premium"),
        ("01371234567", "premium"),
        ("11833", "premium"),
        ("01711234567", "mobile"),
        ("+33123456789", "international"),
        ("0301234567", "national"),
        ("201", "invalid"),
    ],
)
def test_classes(number: str, expected: str) -> None:
    assert classify_number(number)[0] == expected


def test_prefixes() -> None:
    assert parse_dialled("*31#*812#0301234567") == parse_dialled("*812#*31#0301234567")
    dialled = parse_dialled("*31#*812#0301234567")
    assert dialled is not None
    assert (dialled.privacy, dialled.business_code, dialled.number) == (True, "12", "0301234567")
    assert parse_dialled("*2") is None
    assert parse_dialled("*8x#0301") is None


def test_the_docs_example() -> None:
    plans = docs_plan()
    plan = plans.plans["mueller-outbound"]
    jan = (plan, "jan")
    call = decide_outbound(plans, jan, "+33123456789")
    assert isinstance(call, OutboundCall)
    assert call.presented == "+49233198765415"  # his direct extension
    premium = decide_outbound(plans, jan, "09001234567")
    assert premium == Refused(403, "Premium numbers not allowed for jan", "mueller-outbound", "jan")
    service = decide_outbound(
        plans, (plan, "heimbuero"), "*812#0301234567", ["sip:assistant@office"]
    )
    assert isinstance(service, OutboundCall)
    assert service.presented == "+4923319876540"
    assert decide_outbound(plans, None, "112") == Refused(403, "Unknown device: no outbound calls")
    emergency = decide_outbound(plans, (plan, "heimbuero"), "*31#112")
    assert isinstance(emergency, OutboundCall)
    assert not emergency.privacy  # an emergency call always shows the number


def test_international_minutes_per_day() -> None:
    plans = docs_plan()
    plan = plans.plans["mueller-outbound"]
    call = decide_outbound(plans, (plan, "jan"), "+33123456789")
    assert isinstance(call, OutboundCall)
    limits = OutboundLimits()
    assert limits.check(plan, call, 0.0) is None
    limits.talked(call, 60 * 60.0, 10.0)
    refused = limits.check(plan, call, 20.0)
    assert refused is not None
    assert refused.limit
    assert limits.check(plan, call, 86400.0 + 20.0) is None  # a day later
