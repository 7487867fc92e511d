"""The hub: mutators, snapshots, change feeds, expiry (asyncio, no network)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from presence.errors import PresenceValueError, UnknownPersonError
from presence.hub import PresenceHub
from presence.model import Key, PresenceRecord, PresenceSource
from rules.presence import PresenceState as S

DIRECTORY = {"acme": {"anna", "bert"}, "beta": {"carl"}}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_set_and_snapshot() -> None:
    hub = PresenceHub(DIRECTORY, clock=Clock())
    rec = hub.set("acme", "anna", "away", source="phone", note="lunch")
    assert (rec.state, rec.source, rec.note) == (S.AWAY, PresenceSource.PHONE, "lunch")
    assert dict(hub.snapshot("acme")) == {"anna": S.AWAY, "bert": S.AVAILABLE}
    assert hub.record("acme", "anna") == rec


def test_bad_values_name_the_field() -> None:
    hub = PresenceHub(DIRECTORY, clock=Clock())
    with pytest.raises(PresenceValueError, match="state 'sleeping' is not one of"):
        hub.set("acme", "anna", "sleeping", source="web")
    with pytest.raises(PresenceValueError, match="source 'fax'"):
        hub.set("acme", "anna", "away", source="fax")
    with pytest.raises(UnknownPersonError):
        hub.set("acme", "zoe", S.AWAY, source=PresenceSource.WEB)


def test_calls_drive_busy_and_a_stray_end_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    hub = PresenceHub(DIRECTORY, clock=Clock())
    hub.set("acme", "anna", S.DND, source=PresenceSource.PHONE)
    hub.call_started("acme", "anna")
    hub.call_started("acme", "anna")
    assert hub.snapshot("acme")["anna"] == S.BUSY
    hub.call_ended("acme", "anna")
    assert hub.snapshot("acme")["anna"] == S.BUSY
    hub.call_ended("acme", "anna")
    assert hub.snapshot("acme")["anna"] == S.DND
    with caplog.at_level(logging.WARNING):
        hub.call_ended("acme", "anna")
    assert "call ended without a start tenant=acme person=anna" in caplog.text
    assert hub.record("acme", "anna").calls == 0


def test_listeners_get_each_change_and_a_broken_one_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = PresenceHub(DIRECTORY, clock=Clock())
    seen: list[tuple[Key, PresenceRecord | None]] = []

    def broken(key: Key, record: PresenceRecord | None) -> None:
        raise RuntimeError("boom")

    hub.add_listener(broken)
    remove = hub.add_listener(lambda key, rec: seen.append((key, rec)))
    hub.call_started("beta", "carl")
    assert [(k, r.state if r else None) for k, r in seen] == [(("beta", "carl"), S.BUSY)]
    assert "presence listener" in caplog.text
    remove()
    hub.call_ended("beta", "carl")
    assert len(seen) == 1
    hub.replace_directory({"beta": {"carl"}})


async def test_watch_coalesces_changes() -> None:
    hub = PresenceHub(DIRECTORY, clock=Clock())
    with hub.watch() as watch:
        # the people that appeared at construction come first
        assert await watch.next_batch() == {("acme", "anna"), ("acme", "bert"), ("beta", "carl")}
        for state in ("away", "dnd", "available", "offline"):
            hub.set("acme", "anna", state, source="web")
        hub.call_started("beta", "carl")
        assert await asyncio.wait_for(watch.next_batch(), 1) == {("acme", "anna"), ("beta", "carl")}
        assert hub.record("acme", "anna").state == S.OFFLINE
        hub.replace_directory({"acme": {"anna"}})
        assert await asyncio.wait_for(watch.next_batch(), 1) == {("acme", "bert"), ("beta", "carl")}
        assert hub.get(("acme", "bert")) is None
        watch.mark_all()
        assert watch.take() == {("acme", "anna")}
    assert watch not in hub._watches


def test_until_applies_lazily_on_read() -> None:
    clock = Clock()
    hub = PresenceHub(DIRECTORY, clock=clock)
    hub.set("acme", "anna", "away", source="mqtt", until=clock.now + timedelta(hours=1))
    clock.now += timedelta(minutes=59)
    assert hub.snapshot("acme")["anna"] == S.AWAY
    clock.now += timedelta(minutes=1)
    assert hub.snapshot("acme")["anna"] == S.AVAILABLE
    assert hub.record("acme", "anna").source == PresenceSource.SCHEDULE


async def test_expiry_task_publishes_when_until_passes() -> None:
    hub = PresenceHub(DIRECTORY)  # real clock
    async with hub:
        with hub.watch() as watch:
            watch.take()
            until = datetime.now(UTC) + timedelta(milliseconds=200)
            hub.set("acme", "bert", "dnd", source="web", until=until)
            assert await asyncio.wait_for(watch.next_batch(), 1) == {("acme", "bert")}
            # Nobody reads: the task itself notices the passing until.
            assert await asyncio.wait_for(watch.next_batch(), 2) == {("acme", "bert")}
            assert datetime.now(UTC) >= until
            assert hub._book.get(("acme", "bert")).state == S.AVAILABLE  # type: ignore[union-attr]


async def test_expiry_task_stops_promptly() -> None:
    hub = PresenceHub(DIRECTORY)
    async with asyncio.timeout(1):
        async with hub:
            await asyncio.sleep(0)
