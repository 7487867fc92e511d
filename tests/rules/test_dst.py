"""Time zones and daylight saving time, as documented in docs/dialplan.md.

Semantics: ``now`` is converted to the plan's zone and conditions see that local wall-clock time.
The doubled autumn hour is seen twice (and matches the same ranges both times); the skipped
spring hour never occurs, so a range inside it never matches.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import CallInfo, decide
from tests.rules.helpers import MAIN, plan

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
# The DST transition days in Europe/Berlin (last Sunday of March / October).
TRANSITION_DAYS = [
    dt.date(2026, 3, 29),
    dt.date(2026, 10, 25),
    dt.date(2027, 3, 28),
    dt.date(2027, 10, 31),
]
RANGES = ["01:30-02:30", "02:00-03:00", "02:15-02:45", "03:00-04:00", "23:00-02:30"]

PLAN = plan(
    "schedules:\n"
    + "".join(f"  s{i}: {{sun: '{r}', on_closed_days: true}}\n" for i, r in enumerate(RANGES))
    + "rules:\n"
    + "".join(f"  - {{name: r{i}, when: {{schedule: s{i}}}, then: reject}}\n" for i in range(5))
    + "  - {name: none, then: voicemail}\n"
)


def expected_rule(local: dt.datetime) -> str:
    """First range (in plan order) holding the local wall-clock time, computed by hand."""
    minute = local.hour * 60 + local.minute
    for i, text in enumerate(RANGES):
        start_text, end_text = text.split("-")
        start = int(start_text[:2]) * 60 + int(start_text[3:])
        end = int(end_text[:2]) * 60 + int(end_text[3:])
        if local.weekday() == 6 and (start <= minute < end or (end < start and minute >= start)):
            return f"r{i}"
        if end < start and local.weekday() == 0 and minute < end:
            return f"r{i}"  # Sunday night's range continuing after midnight
    return "none"


@given(
    day=st.sampled_from(TRANSITION_DAYS),
    second=st.integers(-3 * 3600, 27 * 3600),
)
def test_schedule_match_equals_match_on_local_wall_time(day: dt.date, second: int) -> None:
    midnight_utc = dt.datetime(day.year, day.month, day.day, tzinfo=UTC) - dt.timedelta(hours=2)
    now = midnight_utc + dt.timedelta(seconds=second)
    local = now.astimezone(BERLIN)
    decision = decide(PLAN, CallInfo(MAIN, None), {}, now)
    assert decision.rule == expected_rule(local)


def test_the_skipped_spring_hour_never_matches() -> None:
    # 2027-03-28 02:00 CET does not exist: 01:59:59 CET is followed by 03:00 CEST.
    start = dt.datetime(2027, 3, 28, 0, 0, tzinfo=UTC)  # 01:00 CET
    seen = {
        decide(PLAN, CallInfo(MAIN), {}, start + dt.timedelta(minutes=m)).rule for m in range(180)
    }
    assert "r2" not in seen  # 02:15-02:45 lies entirely in the skipped hour


def test_the_doubled_autumn_hour_matches_twice() -> None:
    # 2027-10-31: 02:00-03:00 happens twice, at 00:00-01:00 UTC (CEST) and 01:00-02:00 UTC (CET).
    first = dt.datetime(2027, 10, 31, 0, 20, tzinfo=UTC)
    second = dt.datetime(2027, 10, 31, 1, 20, tzinfo=UTC)
    r_first = decide(PLAN, CallInfo(MAIN), {}, first)
    r_second = decide(PLAN, CallInfo(MAIN), {}, second)
    assert r_first.rule == r_second.rule == "r0"  # 02:20 both times, in 01:30-02:30
    assert "CEST" in r_first.trace[0]
    assert "CET" in r_second.trace[0]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        decide(PLAN, CallInfo(MAIN), {}, dt.datetime(2027, 1, 1, 10, 0))


def test_plan_time_zone_is_used() -> None:
    tokyo = plan(
        "timezone: Asia/Tokyo\nschedules: {s: {mon: '09:00-10:00'}}\n"
        "rules:\n  - {name: open, when: {schedule: s}, then: reject}\n"
        "  - {name: closed, then: voicemail}\n"
    )
    now = dt.datetime(2027, 5, 24, 0, 30, tzinfo=UTC)  # Monday 09:30 in Tokyo
    assert decide(tokyo, CallInfo(MAIN), {}, now).rule == "open"
    assert decide(tokyo, CallInfo(MAIN), {}, now.astimezone(BERLIN)).rule == "open"
    assert tokyo.local(now).hour == 9


def test_a_non_existent_wall_time_is_read_as_its_instant() -> None:
    ghost = dt.datetime(2027, 3, 28, 2, 30, tzinfo=BERLIN)  # does not exist: 01:30 UTC
    decision = decide(PLAN, CallInfo(MAIN), {}, ghost)
    assert "Sun 2027-03-28 03:30 CEST" in decision.trace[0]
    assert decision.rule == "r3"  # 03:00-04:00
    again = decide(PLAN, CallInfo(MAIN), {}, dt.datetime(2027, 3, 28, 1, 30, tzinfo=UTC))
    assert again.rule == decision.rule
    second_two_thirty = dt.datetime(2027, 10, 31, 2, 30, fold=1, tzinfo=BERLIN)
    assert "02:30 CET" in decide(PLAN, CallInfo(MAIN), {}, second_two_thirty).trace[0]
