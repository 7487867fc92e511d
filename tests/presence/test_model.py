"""Pure presence transitions: set, until-expiry, call-busy counting, the book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence.errors import PresenceValueError, UnknownPersonError, UnknownTenantError
from presence.model import (
    NOTE_MAX,
    PresenceBook,
    PresenceRecord,
    PresenceSource,
    assign,
    call_ended,
    call_started,
    expire,
    initial,
)
from rules.presence import PresenceState as S

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone(timedelta(hours=1)))
MIN = timedelta(minutes=1)


def test_initial_is_available_by_default() -> None:
    rec = initial(T0)
    assert (rec.state, rec.source, rec.since, rec.calls) == (
        S.AVAILABLE,
        PresenceSource.DEFAULT,
        T0,
        0,
    )


def test_naive_clock_is_refused() -> None:
    with pytest.raises(PresenceValueError, match="no time zone"):
        initial(datetime(2026, 1, 1))


def test_set_moves_since_only_when_shown_state_changes() -> None:
    rec = assign(initial(T0), S.AWAY, source=PresenceSource.WEB, now=T0 + MIN, note=" lunch ")
    assert (rec.state, rec.source, rec.since, rec.note) == (
        S.AWAY,
        PresenceSource.WEB,
        T0 + MIN,
        "lunch",
    )
    again = assign(rec, S.AWAY, source=PresenceSource.PHONE, now=T0 + 2 * MIN)
    assert again.since == T0 + MIN
    assert again.source == PresenceSource.PHONE
    assert again.note is None


def test_call_makes_busy_and_returns_to_previous_state() -> None:
    rec = assign(initial(T0), S.AWAY, source=PresenceSource.MQTT, now=T0)
    busy = call_started(rec, T0 + MIN)
    assert (busy.state, busy.source, busy.since, busy.set_state) == (
        S.BUSY,
        PresenceSource.CALL,
        T0 + MIN,
        S.AWAY,
    )
    second = call_started(busy, T0 + 2 * MIN)
    assert second.calls == 2
    assert second.since == T0 + MIN
    one_left = call_ended(second, T0 + 3 * MIN)
    assert one_left.state == S.BUSY
    assert one_left.since == T0 + MIN
    back = call_ended(one_left, T0 + 4 * MIN)
    assert (back.state, back.source, back.since, back.calls) == (
        S.AWAY,
        PresenceSource.MQTT,
        T0 + 4 * MIN,
        0,
    )


def test_change_during_call_shows_after_call() -> None:
    busy = call_started(initial(T0), T0)
    changed = assign(busy, S.DND, source=PresenceSource.WEB, now=T0 + MIN)
    assert changed.state == S.BUSY
    assert changed.since == T0
    after = call_ended(changed, T0 + 2 * MIN)
    assert after.state == S.DND
    assert after.since == T0 + 2 * MIN


def test_call_end_without_start_is_ignored() -> None:
    rec = initial(T0)
    assert call_ended(rec, T0 + MIN) is rec


def test_until_returns_to_previous_state() -> None:
    dnd = assign(initial(T0), S.DND, source=PresenceSource.PHONE, now=T0)
    site = assign(
        dnd, S.AWAY, source=PresenceSource.MQTT, now=T0, note="on site", until=T0 + 5 * MIN
    )
    assert site.then == S.DND
    assert expire(site, T0 + 4 * MIN) is site
    back = expire(site, T0 + 6 * MIN)
    assert (back.state, back.source, back.note, back.until, back.then, back.since) == (
        S.DND,
        PresenceSource.SCHEDULE,
        None,
        None,
        None,
        T0 + 5 * MIN,  # when until passed, not when it was noticed
    )


def test_temporary_over_temporary_returns_to_permanent() -> None:
    rec = assign(initial(T0), S.OFFLINE, source=PresenceSource.WEB, now=T0)
    rec = assign(rec, S.AWAY, source=PresenceSource.WEB, now=T0, until=T0 + 10 * MIN)
    rec = assign(rec, S.DND, source=PresenceSource.WEB, now=T0, until=T0 + 5 * MIN)
    assert expire(rec, T0 + 5 * MIN).state == S.OFFLINE


def test_until_passing_during_call_keeps_busy_and_since() -> None:
    rec = assign(initial(T0), S.AWAY, source=PresenceSource.WEB, now=T0, until=T0 + MIN)
    rec = call_started(rec, T0)
    after = expire(rec, T0 + 2 * MIN)
    assert after.state == S.BUSY
    assert after.set_state == S.AVAILABLE
    assert after.since == T0


@pytest.mark.parametrize(
    ("until", "message"),
    [
        (T0, "not in the future"),
        (T0 - MIN, "not in the future"),
        (datetime(2026, 11, 25, 14, 0), "no time zone"),
    ],
)
def test_bad_until_is_refused(until: datetime, message: str) -> None:
    with pytest.raises(PresenceValueError, match=message):
        assign(initial(T0), S.AWAY, source=PresenceSource.WEB, now=T0, until=until)


@pytest.mark.parametrize(
    ("note", "message"),
    [("x" * (NOTE_MAX + 1), "longer than"), ("bell\x07", "control characters")],
)
def test_bad_note_is_refused(note: str, message: str) -> None:
    with pytest.raises(PresenceValueError, match=message):
        assign(initial(T0), S.AWAY, source=PresenceSource.WEB, now=T0, note=note)


def test_blank_note_is_none() -> None:
    assert assign(initial(T0), S.AWAY, source=PresenceSource.WEB, now=T0, note="  ").note is None


# ---------------------------------------------------------------- property: call counting

events = st.lists(st.sampled_from(["start", "end", "away", "available", "dnd"]), max_size=40)


@given(events)
def test_busy_exactly_while_calls_are_up(seq: list[str]) -> None:
    rec = initial(T0)
    calls = 0
    last_set = S.AVAILABLE
    for i, ev in enumerate(seq):
        now = T0 + i * MIN
        if ev == "start":
            rec, calls = call_started(rec, now), calls + 1
        elif ev == "end":
            rec, calls = call_ended(rec, now), max(0, calls - 1)
        else:
            last_set = S(ev)
            rec = assign(rec, last_set, source=PresenceSource.WEB, now=now)
        assert rec.calls == calls
        assert rec.state == (S.BUSY if calls else last_set)
        assert rec.since <= now


# ---------------------------------------------------------------- book

DIRECTORY = {"acme": {"anna", "bert"}, "beta": {"carl"}}


def test_book_gives_everybody_a_record_and_snapshot() -> None:
    book = PresenceBook(DIRECTORY, T0)
    assert dict(book.snapshot("acme")) == {"anna": S.AVAILABLE, "bert": S.AVAILABLE}
    assert book.take_changes() == {("acme", "anna"), ("acme", "bert"), ("beta", "carl")}
    assert book.take_changes() == set()
    assert dict(book.snapshot("nobody")) == {}


def test_book_snapshot_is_immutable_and_cached_until_change() -> None:
    book = PresenceBook(DIRECTORY, T0)
    snap = book.snapshot("acme")
    with pytest.raises(TypeError):
        snap["anna"] = S.AWAY  # type: ignore[index]
    assert book.snapshot("acme") is snap
    book.call_started("beta", "carl", T0)
    assert book.snapshot("acme") is snap  # another tenant's change keeps this one
    book.assign("acme", "anna", S.DND, source=PresenceSource.PHONE, now=T0)
    fresh = book.snapshot("acme")
    assert fresh is not snap
    assert fresh["anna"] == S.DND
    assert snap["anna"] == S.AVAILABLE


def test_book_unknown_names() -> None:
    book = PresenceBook(DIRECTORY, T0)
    with pytest.raises(UnknownTenantError) as tenant_err:
        book.assign("nope", "anna", S.AWAY, source=PresenceSource.MQTT, now=T0)
    assert tenant_err.value.tenant == "nope"
    with pytest.raises(UnknownPersonError, match="'zoe' is not known in tenant 'acme'"):
        book.call_started("acme", "zoe", T0)


def test_book_directory_reload_adds_and_drops() -> None:
    book = PresenceBook(DIRECTORY, T0)
    book.assign("acme", "anna", S.AWAY, source=PresenceSource.WEB, now=T0)
    book.take_changes()
    book.replace_directory({"acme": {"anna", "dora"}}, T0 + MIN)
    assert book.take_changes() == {("acme", "bert"), ("acme", "dora"), ("beta", "carl")}
    assert book.get(("acme", "bert")) is None
    assert book.record("acme", "anna").state == S.AWAY  # kept
    assert dict(book.snapshot("acme")) == {"anna": S.AWAY, "dora": S.AVAILABLE}


def test_book_restores_records_without_calls_and_expires_passed_until() -> None:
    stored = {
        ("acme", "anna"): PresenceRecord(S.DND, PresenceSource.PHONE, T0, calls=3),
        ("acme", "bert"): PresenceRecord(S.AWAY, PresenceSource.MQTT, T0, until=T0 + MIN),
        ("gone", "x"): PresenceRecord(S.AWAY, PresenceSource.MQTT, T0),
    }
    book = PresenceBook(DIRECTORY, T0 + 2 * MIN, stored)
    assert book.record("acme", "anna").state == S.DND
    assert book.record("acme", "anna").calls == 0
    assert book.record("acme", "bert").state == S.AVAILABLE
    # dropped, expired and new people are reported so a store can catch up
    assert book.take_changes() == {("gone", "x"), ("acme", "bert"), ("beta", "carl")}


def test_book_next_expiry_and_expire_due() -> None:
    book = PresenceBook(DIRECTORY, T0)
    assert book.next_expiry() is None
    book.assign("acme", "anna", S.AWAY, source=PresenceSource.WEB, now=T0, until=T0 + 2 * MIN)
    book.assign("acme", "bert", S.AWAY, source=PresenceSource.WEB, now=T0, until=T0 + MIN)
    assert book.next_expiry() == T0 + MIN
    assert book.expire_due(T0 + MIN) == [("acme", "bert")]
    assert book.next_expiry() == T0 + 2 * MIN
    assert book.snapshot("acme")["bert"] == S.AVAILABLE


def test_book_people_of_unknown_tenant() -> None:
    book = PresenceBook(DIRECTORY, T0)
    assert [p for p, _ in book.people("acme")] == ["anna", "bert"]
    with pytest.raises(UnknownTenantError):
        list(book.people("nope"))


def test_utc_and_offset_times_compare() -> None:
    rec = assign(
        initial(T0),
        S.AWAY,
        source=PresenceSource.WEB,
        now=T0,
        until=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
    )
    assert expire(rec, T0 + 59 * MIN).state == S.AWAY
    assert expire(rec, T0 + 60 * MIN).state == S.AVAILABLE
