"""PIDF (RFC 3863) + RPID (RFC 4480) documents: build, parse, and a peer's document."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence import pidf
from presence.errors import PidfError
from presence.model import PresenceSource, assign, call_started, initial
from rules.presence import PresenceState as S

CET = timezone(timedelta(hours=1))
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=CET)


@pytest.mark.parametrize(
    ("state", "basic", "activities"),
    [
        (S.AVAILABLE, "open", ()),
        (S.BUSY, "open", ("on-the-phone",)),
        (S.AWAY, "open", ("away",)),
        (S.DND, "open", ("busy",)),
        (S.OFFLINE, "closed", ()),
    ],
)
def test_state_mapping_round_trip(state: S, basic: str, activities: tuple[str, ...]) -> None:
    doc = pidf.parse(pidf.build("sip:anna@office.example", state, timestamp=T0))
    assert (doc.entity, doc.basic, doc.activities, doc.state, doc.timestamp) == (
        "sip:anna@office.example",
        basic,
        activities,
        state,
        T0,
    )


def test_document_structure_follows_rfc_3863_and_4480() -> None:
    body = pidf.build("sip:anna@office.example", S.AWAY, note="on site", until=T0)
    root = ET.fromstring(body)
    ns = {"p": pidf.NS_PIDF, "dm": pidf.NS_DM, "r": pidf.NS_RPID}
    assert root.tag == f"{{{pidf.NS_PIDF}}}presence"
    assert root.find("p:tuple/p:status/p:basic", ns).text == "open"  # type: ignore[union-attr]
    acts = root.find("dm:person/r:activities", ns)
    assert acts is not None
    assert acts.get("until") == T0.isoformat()
    assert acts.find("r:away", ns) is not None
    assert root.find("dm:person/dm:note", ns).text == "on site"  # type: ignore[union-attr]
    assert root.find("p:note", ns).text == "on site"  # type: ignore[union-attr]
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xD7FF), min_size=1, max_size=80
    )
)
def test_any_note_survives(note: str) -> None:
    doc = pidf.parse(pidf.build("sip:a@b", S.AWAY, note=note))
    assert doc.note == note


def test_document_for_a_record_shows_the_call() -> None:
    rec = assign(initial(T0), S.AWAY, source=PresenceSource.WEB, now=T0, note="on site")
    rec = call_started(rec, T0 + timedelta(minutes=1))
    doc = pidf.parse(pidf.document_for("sip:anna@office.example", rec))
    assert (doc.state, doc.activities, doc.note, doc.timestamp) == (
        S.BUSY,
        ("on-the-phone",),
        "on site",
        T0 + timedelta(minutes=1),
    )


def test_entity_and_note_checks() -> None:
    with pytest.raises(PidfError, match="not a sip:"):
        pidf.build("anna@office", S.AWAY)
    with pytest.raises(PidfError, match=r"XML 1\.0"):
        pidf.build("sip:a@b", S.AWAY, note="bell\x07")
    with pytest.raises(PidfError, match="no time zone"):
        pidf.build("sip:a@b", S.AWAY, until=datetime(2026, 1, 1))


# A NOTIFY body as sent by a Linphone-style client: two tuples, Z-suffixed time, no note
# at top level, an RPID activity with a foreign extension element beside it.
PEER_DOC = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:x="urn:example:x" entity="sip:bert@192.0.2.1">
 <tuple id="desk"><status><basic>closed</basic></status></tuple>
 <tuple id="mobile"><status><basic>open</basic></status>
  <timestamp>2026-11-25T08:00:00Z</timestamp></tuple>
 <dm:person id="p1"><rpid:activities><rpid:on-the-phone/><x:ext/></rpid:activities>
  <dm:note>Call me later</dm:note></dm:person>
</presence>"""


def test_peer_document() -> None:
    doc = pidf.parse(PEER_DOC)
    assert doc.entity == "sip:bert@192.0.2.1"
    assert doc.basic == "open"
    assert doc.activities == ("on-the-phone",)
    assert doc.state == S.BUSY
    assert doc.note == "Call me later"
    assert doc.timestamp == datetime(2026, 11, 25, 8, tzinfo=UTC)


DATA = Path(__file__).parent / "data"


def test_baresip_publish_open() -> None:
    doc = pidf.parse((DATA / "baresip-1.0.0_publish_open.xml").read_bytes())
    assert doc.entity.startswith("sip:anna@127.0.0.1:")
    assert (doc.basic, doc.activities, doc.note, doc.state) == ("open", (), None, S.AVAILABLE)


def test_baresip_publish_unknown_is_tolerated() -> None:
    # baresip 1.0 sends <basic>unknown</basic> (not RFC 3863) before a status is set
    doc = pidf.parse((DATA / "baresip-1.0.0_publish_unknown.xml").read_bytes())
    assert (doc.basic, doc.state) == (None, S.AVAILABLE)
    mixed = pidf.parse(
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"'
        b' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:a@b">'
        b"<tuple id='t'><status><basic>maybe</basic></status></tuple>"
        b"<dm:person id='p'><r:activities><r:away/></r:activities></dm:person></presence>"
    )
    assert (mixed.basic, mixed.state) == (None, S.AWAY)


@pytest.mark.parametrize("state", list(S))
def test_our_documents_match_baresip_subscriber_patterns(state: S) -> None:
    # baresip 1.0 modules/presence/subscriber.c reads NOTIFY bodies with these patterns
    body = pidf.build("sip:a@b", state).decode()
    assert ("<basic>open</basic>" in body) == (state != S.OFFLINE)
    assert (re.search(r"<rpid:away[ \t]*/>", body) is not None) == (state == S.AWAY)
    assert (re.search(r"<rpid:busy[ \t]*/>", body) is not None) == (state == S.DND)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<presence", "not well-formed"),
        (b'<x xmlns="urn:other"/>', "root element"),
        (b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', "no entity"),
        (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>', "no basic status"),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t">'
            b"<status><basic>open</basic></status><timestamp>yesterday</timestamp></tuple></presence>",
            "timestamp 'yesterday'",
        ),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><presence/>', "DTD"),
        (b" " * 70000, "over 65536"),
    ],
)
def test_bad_documents(document: bytes, message: str) -> None:
    with pytest.raises(PidfError, match=message):
        pidf.parse(document)
