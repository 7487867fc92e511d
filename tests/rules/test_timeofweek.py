"""Weekly schedules: day keys, ranges, midnight, Sunday wrap-around, half-open intervals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.timeofweek import (
    MINUTES_PER_WEEK,
    ScheduleSyntaxError,
    Week,
    compile_week,
    parse_days,
    parse_ranges,
)
from tests.rules.helpers import at, plan, run


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mon", (0,)),
        ("Mon-Thu", (0, 1, 2, 3)),
        ("sat, sun", (5, 6)),
        ("fri-mon", (4, 5, 6, 0)),
        ("weekdays", (0, 1, 2, 3, 4)),
        ("weekend", (5, 6)),
        ("daily", (0, 1, 2, 3, 4, 5, 6)),
        ("mon,wed-thu", (0, 2, 3)),
    ],
)
def test_parse_days(key: str, days: tuple[int, ...]) -> None:
    assert parse_days(key) == days


def test_parse_days_suggests_a_day() -> None:
    with pytest.raises(ScheduleSyntaxError, match="unknown day 'thurs', did you mean 'thu'"):
        parse_days("mon-thurs")
    with pytest.raises(ScheduleSyntaxError, match=r"unknown day '12'$"):
        parse_days("12")


def test_parse_ranges_across_midnight_and_24_00() -> None:
    assert parse_ranges("07:00-12:00, 13:00-16:30") == ((420, 720), (780, 990))
    assert parse_ranges("22:00-06:00") == ((1320, 1800),)
    assert parse_ranges("00:00-24:00") == ((0, 1440),)
    assert parse_ranges("7:05-8:00") == ((425, 480),)


def test_compile_week_labels_and_wraps_sunday_night_to_monday() -> None:
    week = Week.of(compile_week([("sun", "22:00-06:00"), ("mon", "08:00-24:00")]))
    assert [(i.start, i.end, i.origin) for i in week.intervals] == [
        (0, 360, 6),
        (480, 1440, 0),
        (6 * 1440 + 1320, MINUTES_PER_WEEK, 6),
    ]
    assert week.describe() == "Sun 22:00-06:00, Mon 08:00-24:00"
    assert week.find(0) is not None
    assert week.find(359) is not None
    assert week.find(360) is None  # half-open: the end minute is outside
    assert week.find(479) is None
    assert week.find(480) is not None
    assert Week.of(()).describe() == "never"
    assert Week.of(()).find(5) is None


@given(
    start=st.integers(0, 1439),
    length=st.integers(1, 1439),
    day=st.integers(0, 6),
    probe=st.integers(0, MINUTES_PER_WEEK - 1),
)
def test_a_single_range_matches_exactly_its_minutes(
    start: int, length: int, day: int, probe: int
) -> None:
    end = (start + length) % 1440
    text = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    if end == 0:
        text = text[:6] + "24:00"
    week = Week.of(compile_week([(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day], text)]))
    first = day * 1440 + start
    inside = (probe - first) % MINUTES_PER_WEEK < length
    assert (week.find(probe) is not None) == inside


def test_a_night_range_belongs_to_the_day_it_starts_on() -> None:
    p = plan(
        """\
        holidays: {country: DE, subdivision: NW}
        schedules:
          night: {fri: "22:00-06:00"}
        rules:
          - {name: night, when: {schedule: night}, then: reject}
          - {name: day, then: voicemail}
        """
    )
    friday_night = run(p, at(2027, 5, 21, 23, 0))
    assert friday_night.rule == "night"
    assert friday_night.trace[1] == (
        "rule 'night': Fri 23:00 is in Fri 22:00-06:00 of schedule 'night' → match"
    )
    assert run(p, at(2027, 5, 22, 5, 59)).rule == "night"  # Saturday 05:59: still Friday's
    assert run(p, at(2027, 5, 22, 6, 0)).rule == "day"  # half-open end
    assert run(p, at(2027, 5, 21, 21, 59)).rule == "day"
    # Good Friday 2027 (26 March) is a holiday in NW: the whole night range is off, also the
    # part that falls on Saturday, because the range belongs to Friday.
    off = run(p, at(2027, 3, 27, 2, 0))
    assert off.rule == "day"
    assert "but 2027-03-26 is a public holiday (Karfreitag)" in off.trace[1]


def test_on_closed_days_true_keeps_a_schedule_on_holidays() -> None:
    p = plan(
        """\
        holidays: {country: DE, subdivision: NW}
        schedules:
          always: {daily: "00:00-24:00", on_closed_days: true}
          office: {daily: "00:00-24:00"}
        rules:
          - {name: office, when: {schedule: office}, then: reject}
          - {name: always, when: {schedule: always}, then: voicemail}
        """
    )
    assert run(p, at(2027, 1, 1)).rule == "always"  # Neujahr
    assert run(p, at(2027, 1, 4)).rule == "office"


def test_inline_and_multiple_schedules() -> None:
    p = plan(
        """\
        schedules:
          morning: {weekdays: "08:00-12:00"}
          afternoon: {weekdays: "13:00-17:00"}
        rules:
          - {name: open, when: {schedule: [morning, afternoon]}, then: reject}
          - {name: sat, when: {schedule: {sat: ["09:00-10:00", "11:00-12:00"]}}, then: reject}
          - {name: closed, then: voicemail}
        """
    )
    monday = dt.date(2027, 5, 24)
    assert run(p, at(monday.year, monday.month, monday.day, 9)).rule == "open"
    assert run(p, at(2027, 5, 24, 12, 30)).rule == "closed"
    lunch = run(p, at(2027, 5, 24, 12, 30))
    assert "none of: Mon 12:30 is outside schedule 'morning'" in lunch.trace[1]
    assert run(p, at(2027, 5, 24, 14)).rule == "open"
    assert run(p, at(2027, 5, 29, 11, 30)).rule == "sat"
    assert run(p, at(2027, 5, 29, 10, 30)).rule == "closed"
