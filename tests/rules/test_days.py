"""Public holidays per Bundesland, closed days and vacations."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import DayStatus
from rules.days import public_holidays, supported_categories, supported_subdivisions
from tests.rules.helpers import at, plan, problems, run

STATES = [
    "BW",
    "BY",
    "BE",
    "BB",
    "HB",
    "HH",
    "HE",
    "MV",
    "NI",
    "NW",
    "RP",
    "SL",
    "SN",
    "ST",
    "SH",
    "TH",
]
OFFICE = """\
schedules:
  office: {daily: "00:00-24:00"}
closed_days: ["2026-12-24", 2026-12-31]
vacations:
  - {from: 2027-08-02, to: 2027-08-20, name: Betriebsferien}
  - {from: 2027-12-27, to: 2027-12-30}
rules:
  - {name: office, when: {schedule: office}, then: reject}
  - {name: closed, then: voicemail}
"""


@pytest.fixture(scope="module", params=STATES)
def state_plan(request: pytest.FixtureRequest) -> tuple[str, object]:
    return request.param, plan(
        f"holidays: {{country: DE, subdivision: {request.param}}}\n" + OFFICE
    )


@settings(max_examples=40, deadline=None)
@given(year=st.integers(2024, 2030), data=st.data())
def test_a_public_holiday_of_the_state_is_always_closed(
    state_plan: tuple[str, object], year: int, data: st.DataObject
) -> None:
    state, p = state_plan
    table = holidays.country_holidays("DE", subdiv=state, years=year)
    day = data.draw(st.sampled_from(sorted(table)))
    hour = data.draw(st.integers(0, 23))
    decision = run(p, at(day.year, day.month, day.day, hour))  # type: ignore[arg-type]
    assert decision.rule == "closed"
    assert "public holiday" in decision.trace[1]


def test_holidays_differ_between_states() -> None:
    by = plan("holidays: {country: DE, subdivision: BY}\n" + OFFICE)
    be = plan("holidays: {country: DE, subdivision: BE}\n" + OFFICE)
    epiphany = at(2027, 1, 6)  # Heilige Drei Könige: Bavaria yes, Berlin no
    assert run(by, epiphany).rule == "closed"
    assert run(be, epiphany).rule == "office"
    womens_day = at(2027, 3, 8)  # Internationaler Frauentag: Berlin only
    assert run(be, womens_day).rule == "closed"
    assert run(by, womens_day).rule == "office"


def test_without_holidays_section_no_day_is_a_holiday() -> None:
    p = plan(OFFICE)
    assert run(p, at(2027, 12, 25)).rule == "office"
    assert p.day_status(dt.date(2027, 12, 25)) == DayStatus(dt.date(2027, 12, 25))


def test_closed_days_and_vacations() -> None:
    p = plan("holidays: {country: DE}\n" + OFFICE)
    assert run(p, at(2026, 12, 24)).rule == "closed"
    assert run(p, at(2026, 12, 23)).rule == "office"
    assert run(p, at(2027, 8, 2, 0, 0)).rule == "closed"
    assert run(p, at(2027, 8, 20, 23, 59)).rule == "closed"
    assert run(p, at(2027, 8, 21, 0, 0)).rule == "office"
    status = p.day_status(dt.date(2027, 8, 10))
    assert status.vacation == "Betriebsferien"
    assert status.closed
    assert status.why == "in the vacation 'Betriebsferien'"
    assert p.day_status(dt.date(2027, 12, 28)).vacation == "vacation"
    christmas_eve = p.day_status(dt.date(2026, 12, 24))
    assert christmas_eve.why == "a closed day"
    both = DayStatus(dt.date(2026, 12, 25), "Weihnachten", True, "Ferien")
    assert (
        both.why == "a public holiday (Weihnachten) and a closed day and in the vacation 'Ferien'"
    )
    assert not DayStatus(dt.date(2026, 1, 2)).closed


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("holiday: true", {dt.date(2027, 1, 1): True, dt.date(2026, 12, 24): False}),
        ("holiday: false", {dt.date(2027, 1, 1): False, dt.date(2027, 1, 4): True}),
        ("closed: true", {dt.date(2026, 12, 24): True, dt.date(2027, 8, 5): True}),
        ("closed: false", {dt.date(2027, 1, 1): False, dt.date(2027, 1, 4): True}),
        ("vacation: true", {dt.date(2027, 8, 5): True, dt.date(2027, 1, 1): False}),
        ("vacation: false", {dt.date(2027, 8, 5): False, dt.date(2027, 1, 4): True}),
    ],
)
def test_day_kind_conditions(when: str, expected: dict[dt.date, bool]) -> None:
    p = plan(
        "holidays: {country: DE, subdivision: NW}\nclosed_days: [2026-12-24]\n"
        "vacations: [{from: 2027-08-02, to: 2027-08-20}]\n"
        f"rules:\n  - {{name: yes, when: {{{when}}}, then: reject}}\n"
        "  - {name: no, then: voicemail}\n"
    )
    for day, matches in expected.items():
        decision = run(p, at(day.year, day.month, day.day))
        assert (decision.rule == "yes") is matches, decision.trace


def test_trace_names_the_kind_of_day() -> None:
    p = plan(
        "holidays: {country: DE, subdivision: NW}\n"
        "rules:\n  - {name: h, when: {holiday: true}, then: reject}\n"
        "  - {name: v, when: {vacation: true}, then: reject}\n"
        "  - {name: c, when: {closed: true}, then: reject}\n  - {name: o, then: voicemail}\n"
    )
    trace = run(p, at(2027, 1, 4)).trace
    assert trace[1] == "rule 'h': 2027-01-04 is not a public holiday → no match"
    assert trace[2] == "rule 'v': 2027-01-04 is not in a vacation → no match"
    assert trace[3] == "rule 'c': 2027-01-04 is not closed → no match"
    assert run(p, at(2027, 1, 1)).trace[1] == (
        "rule 'h': 2027-01-01 is a public holiday (Neujahr) → match"
    )


def test_public_holidays_are_german_names_and_memoised() -> None:
    table = public_holidays("DE", "SN", 2027)
    assert table[dt.date(2027, 11, 17)] == "Buß- und Bettag"
    assert public_holidays("DE", "SN", 2027) is table
    assert public_holidays("AT", None, 2027)[dt.date(2027, 12, 8)]  # other countries: own names
    assert supported_subdivisions("XX") is None
    assert "NW" in (supported_subdivisions("DE") or [])


MARIAE_HIMMELFAHRT = dt.date(2028, 8, 15)  # a Tuesday
FRONLEICHNAM = dt.date(2027, 5, 27)


@pytest.mark.parametrize(
    ("holidays_key", "day", "name"),
    [
        ("{country: DE, subdivision: BY}", MARIAE_HIMMELFAHRT, None),
        ("{country: DE, subdivision: BY, categories: [public, catholic]}",
         MARIAE_HIMMELFAHRT, "Mariä Himmelfahrt"),
        ("{country: DE, subdivision: SN}", FRONLEICHNAM, None),
        ("{country: DE, subdivision: SN, categories: [public, catholic]}",
         FRONLEICHNAM, "Fronleichnam"),
        ("{country: DE, subdivision: TH, categories: [public, catholic, public]}",
         FRONLEICHNAM, "Fronleichnam"),
        ("{country: DE, subdivision: Augsburg}", MARIAE_HIMMELFAHRT, "Mariä Himmelfahrt"),
        ("{country: DE, subdivision: Augsburg}", dt.date(2028, 8, 8),
         "Augsburger Hohes Friedensfest"),
        ("{country: AT, categories: [public, bank]}", dt.date(2027, 12, 24), "Heiliger Abend"),
    ],
)  # fmt: skip
def test_holiday_categories_of_the_package(holidays_key: str, day: dt.date, name: str) -> None:
    p = plan(f"holidays: {holidays_key}\n" + OFFICE)
    assert p.day_status(day).holiday == name
    assert p.day_status(dt.date(2028, 1, 1)).holiday == "Neujahr"  # public ones still count
    assert p.warnings == ()


def test_the_trace_names_a_catholic_holiday_in_german() -> None:
    p = plan("holidays: {country: DE, subdivision: BY, categories: [public, catholic]}\n" + OFFICE)
    assert run(p, at(2028, 8, 15)).trace[1] == (
        "rule 'office': Tue 10:00 is in Tue 00:00-24:00 of schedule 'office',"
        " but 2028-08-15 is a public holiday (Mariä Himmelfahrt) → no match"
    )


@pytest.mark.parametrize(
    ("holidays_key", "expected"),
    [
        (
            "{country: DE, subdivision: BY, categories: [public, katholic]}",
            "<test>:9:63: holidays.categories[1]: unknown holiday category 'katholic' of DE,"
            " did you mean 'catholic'? (known: catholic, public, school)",
        ),
        (
            "{country: DE, categories: bank}",
            "<test>:9:25: holidays.categories: unknown holiday category 'bank' of DE"
            " (known: catholic, public, school)",
        ),
        (
            "{country: DE, subdivision: Bayern}",
            "<test>:9:25: holidays.subdivision: unknown subdivision 'Bayern' of DE, did you mean"
            " 'BY'? (known: BB, BE, BW, BY, HB, HE, HH, MV, NI, NW, RP, SH, SL, SN, ST, TH,"
            " Augsburg)",
        ),
    ],
)
def test_unknown_categories_and_subdivisions(holidays_key: str, expected: str) -> None:
    found = problems(f"holidays: {holidays_key}\n" + OFFICE)
    assert found == [expected]


def test_categories_without_public_warn() -> None:
    p = plan("holidays: {country: DE, subdivision: BY, categories: [catholic]}\n" + OFFICE)
    assert [str(w) for w in p.warnings] == [
        "<test>:9:42: holidays.categories: without 'public' the public holidays do not count,"
        " only catholic"
    ]
    assert p.day_status(MARIAE_HIMMELFAHRT).holiday == "Mariä Himmelfahrt"
    assert p.day_status(dt.date(2028, 1, 1)).holiday is None


def test_supported_categories() -> None:
    assert supported_categories("DE") == ("catholic", "public", "school")
    assert public_holidays("DE", "BY", 2028, ("public", "catholic"))[MARIAE_HIMMELFAHRT]
