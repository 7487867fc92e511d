"""Presence written as text for explain/week: people and services, with an until-time."""

from __future__ import annotations

import datetime as dt

import pytest

from rules import (
    PresenceArgumentError,
    PresenceSetting,
    PresenceState,
    parse_presence_arg,
    presence_snapshot,
)
from tests.rules.helpers import BERLIN, at, plan, run

P = plan(
    "rules:\n"
    "  - {name: service away, when: {presence: {svc: away}}, then: [{ring: [jan]}]}\n"
    "  - {name: service, then: [{ring: [svc]}]}\n"
)
NOW = at(2027, 5, 27, 10, 0)


def test_a_service_may_be_given_a_presence_and_decide_uses_it() -> None:
    setting = parse_presence_arg(P, "svc=away", NOW)
    assert setting == PresenceSetting("svc", PresenceState.AWAY, None)
    snapshot = presence_snapshot([setting], NOW)
    assert run(P, NOW, presence=snapshot).rule == "service away"
    assert run(P, NOW).rule == "service"


def test_until_a_time_of_the_day_being_explained() -> None:
    setting = parse_presence_arg(P, " svc = AWAY until 14:00 ", NOW)
    assert setting.until == dt.datetime(2027, 5, 27, 14, 0, tzinfo=BERLIN)
    assert presence_snapshot([setting], NOW) == {"svc": PresenceState.AWAY}
    later = at(2027, 5, 27, 14, 0)
    assert presence_snapshot([setting], later) == {}  # passed: counts as available
    assert run(P, later, presence=presence_snapshot([setting], later)).rule == "service"
    early = parse_presence_arg(P, "jan=dnd until 7:30", NOW).until
    assert early == dt.datetime(2027, 5, 27, 7, 30, tzinfo=BERLIN)


def test_until_a_date_and_time_and_in_another_zone() -> None:
    setting = parse_presence_arg(P, "jan=busy until 2027-05-28 08:00", NOW)
    assert setting.until == dt.datetime(2027, 5, 28, 8, 0, tzinfo=BERLIN)
    utc = parse_presence_arg(P, "jan=busy until 2027-05-28T06:00+00:00", NOW)
    assert utc.until == setting.until
    assert setting.in_effect(NOW)
    assert not setting.in_effect(dt.datetime(2027, 5, 28, 8, 0, tzinfo=BERLIN))
    # the local date counts: 23:30 UTC is already the next day in Berlin
    late = parse_presence_arg(
        P, "jan=away until 08:00", dt.datetime(2027, 5, 27, 23, 30, tzinfo=dt.UTC)
    )
    assert late.until == dt.datetime(2027, 5, 28, 8, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jan", "'jan': expected ID=STATE or ID=STATE until HH:MM, e.g. 'jan=away until 14:00'"),
        ("=away", "'=away': expected ID=STATE or ID=STATE until HH:MM"),
        ("jan=", "'jan=': expected ID=STATE or ID=STATE until HH:MM"),
        (
            "sv=away",
            "'sv=away': test has no person or service 'sv', did you mean 'svc'?"
            " (people: jan, eva; services: svc)",
        ),
        ("bob=away", "'bob=away': test has no person or service 'bob' (people: jan, eva;"),
        (
            "jan=gone",
            "'jan=gone': unknown state 'gone' (states: available, away, busy, dnd, offline)",
        ),
        ("jan=away until noon", "'jan=away until noon': until 'noon' is not HH:MM or YYYY-MM-DD"),
        ("jan=away until 2027-13-01 10:00", "until '2027-13-01 10:00' is not HH:MM"),
        ("jan=away until 25:00", "until '25:00' is not HH:MM"),
    ],
)
def test_what_is_wrong_and_what_would_be_right(text: str, message: str) -> None:
    with pytest.raises(PresenceArgumentError) as info:
        parse_presence_arg(P, text, NOW)
    assert message in str(info.value)


def test_a_plan_without_services_says_so() -> None:
    bare = plan("rules: [{name: r, then: reject}]\n", head="tenant: t\nname: T\n")
    with pytest.raises(PresenceArgumentError, match=r"\(people: none; services: none\)"):
        parse_presence_arg(bare, "x=away", NOW)
