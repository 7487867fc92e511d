"""Topic names, command decoding, state messages and discovery configs (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence.errors import PayloadError, TopicError
from presence.model import PresenceSource, assign, call_started, initial
from presence.topics import (
    Topics,
    decode_command,
    decode_override,
    decode_state,
    discovery_config,
    discovery_object_id,
    encode_state,
    is_override_topic,
)
from rules.presence import PresenceState as S

CET = timezone(timedelta(hours=1))
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=CET)
TOPICS = Topics()


def test_topic_names() -> None:
    assert TOPICS.status == "rufweiche/v1/status"
    assert TOPICS.presence("acme", "anna") == "rufweiche/v1/acme/person/anna/presence"
    assert TOPICS.command("acme", "anna") == "rufweiche/v1/acme/person/anna/presence/set"
    assert TOPICS.command_filter == "rufweiche/v1/+/person/+/presence/set"
    assert TOPICS.discovery("acme", "anna") == "homeassistant/sensor/rufweiche_acme_anna/config"
    assert TOPICS.event("acme", "voicemail") == "rufweiche/v1/acme/voicemail"
    assert Topics(prefix="x/y").event("acme", "dictation") == "x/y/acme/dictation"


def test_event_topics_take_only_known_kinds_and_level_safe_tenants() -> None:
    with pytest.raises(TopicError, match="not an event kind"):
        TOPICS.event("acme", "fax")
    with pytest.raises(TopicError, match="cannot be an MQTT topic level"):
        TOPICS.event("a/b", "voicemail")


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x\x00"])
def test_ids_that_cannot_be_levels(bad: str) -> None:
    with pytest.raises(TopicError, match="cannot be an MQTT topic level"):
        TOPICS.presence("acme", bad)


@given(st.text(min_size=1, max_size=30).filter(lambda s: not set(s) & set("/+#\x00")))
def test_command_topic_round_trip(person: str) -> None:
    assert TOPICS.parse_command(TOPICS.command("acme", person)) == ("acme", person)


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/acme/person/anna/presence/set",
        "rufweiche/v1/acme/person/anna/presence",
        "rufweiche/v1/acme/people/anna/presence/set",
        "rufweiche/v1//person/anna/presence/set",
        "rufweiche/v1/acme/person/anna/presence/set/more",
    ],
)
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(TopicError):
        TOPICS.parse_command(topic)


def test_discovery_object_ids_do_not_collide() -> None:
    assert discovery_object_id("a_b", "c") != discovery_object_id("a", "b_c")
    odd = discovery_object_id("Bäckerei Ost", "anna.k")
    assert odd.startswith("rufweiche_B_ckerei_Ost_anna_k_")
    assert all((ch.isalnum() and ch.isascii()) or ch in "_-" for ch in odd)


def test_decode_full_command() -> None:
    cmd = decode_command(
        b'{"state": "away", "note": "on site", "until": "2026-11-25T14:00:00+01:00"}'
    )
    assert (cmd.state, cmd.note, cmd.until) == (
        S.AWAY,
        "on site",
        datetime(2026, 11, 25, 14, tzinfo=CET),
    )


def test_decode_bare_word() -> None:
    assert decode_command(" dnd\n").state == S.DND


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"state": "sleeping"}', "state 'sleeping' is not one of 'available', 'away'"),
        (b"sleeping", "state 'sleeping' is not one of"),
        (b'{"note": "x"}', "state is missing"),
        (b'{"state": "away", "colour": "red"}', "colour is not a known field"),
        (b'{"state": "away", "until": "2026-11-25T14:00:00"}', "until '2026-11-25T14:00:00'"),
        (b'{"state": "away", "note": "' + b"x" * 300 + b'"}', "note"),
        (b'{"state": "away", "note": "' + b"x" * 3000 + b'"}', "over 2048"),
    ],
)
def test_bad_commands_say_what_is_wrong(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("(", r"\(")):
        decode_command(payload)


def test_state_message_round_trip() -> None:
    rec = assign(
        initial(T0),
        S.AWAY,
        source=PresenceSource.MQTT,
        now=T0,
        note="on site",
        until=T0 + timedelta(hours=5),
    )
    rec = call_started(rec, T0 + timedelta(minutes=1))
    data = json.loads(encode_state("acme", "anna", rec))
    assert data == {
        "tenant": "acme",
        "person": "anna",
        "state": "busy",
        "set_state": "away",
        "source": "call",
        "since": "2026-11-25T09:01:00+01:00",
        "note": "on site",
        "until": "2026-11-25T14:00:00+01:00",
        "then": "available",
        "calls": 1,
    }
    msg = decode_state(encode_state("acme", "anna", rec))
    assert (msg.state, msg.set_state, msg.until) == (S.BUSY, S.AWAY, rec.until)


def test_decode_state_refuses_garbage() -> None:
    with pytest.raises(PayloadError):
        decode_state(b'{"state": "away"}')


def test_discovery_config_points_at_state_and_status() -> None:
    config = json.loads(discovery_config(TOPICS, "acme", "anna"))
    assert config["state_topic"] == "rufweiche/v1/acme/person/anna/presence"
    assert config["json_attributes_topic"] == config["state_topic"]
    assert config["availability_topic"] == "rufweiche/v1/status"
    assert config["value_template"] == "{{ value_json.state }}"
    assert config["unique_id"] == "rufweiche_acme_anna"
    assert set(config["options"]) == {s.value for s in S}
    assert config["device"]["identifiers"] == ["rufweiche_acme"]


def test_decode_override() -> None:
    assert decode_override("night").state is S.AWAY
    assert decode_override(b"Normal").state is S.AVAILABLE
    until = decode_override('{"override": "service", "until": "2027-05-25T14:00:00+02:00"}')
    assert (until.state, until.until is not None) == (S.AWAY, True)
    for bad in ("sideways", "{", '{"state": "away"}', '{"override": "on", "until": "x"}',
                "x" * 5000):  # fmt: skip
        with pytest.raises(PayloadError):
            decode_override(bad)
    assert is_override_topic("rufweiche/v1/t/person/p/override/set")
    assert Topics().parse_command("rufweiche/v1/t/person/p/override/set") == ("t", "p")
