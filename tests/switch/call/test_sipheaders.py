"""Pure parts of the worker: header text for the callee, status classes, INVITE parsing."""

from __future__ import annotations

import pytest

from rules.decision import Failure
from switch.call.sipheaders import (
    asserted_identity,
    classify,
    diversion,
    from_header,
    header_tag,
    header_values,
    history_info,
    parse_name_addr,
    quote_display,
    reason_header,
    request_uri,
    resolve_target,
    uri_user,
)
from switch.errors import UnroutableTarget

HOST = "127.0.0.1:5060"


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (486, Failure.BUSY),
        (600, Failure.BUSY),
        (408, Failure.NO_ANSWER),
        (480, Failure.NO_ANSWER),
        (487, Failure.NO_ANSWER),
        (603, Failure.DECLINED),
        (404, Failure.UNREACHABLE),
        (500, Failure.UNREACHABLE),
        (503, Failure.UNREACHABLE),
        (415, Failure.UNREACHABLE),
    ],
)
def test_classify_final_status(status: int, failure: Failure) -> None:
    assert classify(status) is failure


def test_from_header_names_business_and_keeps_caller_number() -> None:
    value = from_header("Tischlerei Müller: +491715550100", "+491715550100", HOST)
    assert value == '"Tischlerei Müller: +491715550100" <sip:+491715550100@127.0.0.1:5060>'


def test_from_header_for_anonymous_caller_uses_rfc3323_uri() -> None:
    value = from_header("Tischlerei Müller: Anonym", None, HOST)
    assert value.endswith("<sip:anonymous@anonymous.invalid>")


def test_display_name_quotes_are_escaped_and_control_characters_dropped() -> None:
    assert quote_display('Bau "Nord"\\\r\n') == '"Bau \\"Nord\\"\\\\"'


def test_diversion_and_history_info_name_the_business_number() -> None:
    assert diversion("+49301234560", HOST) == (
        "<sip:+49301234560@127.0.0.1:5060>;reason=unconditional;counter=1"
    )
    history = history_info("+49301234560", "sip:201@10.0.0.5", HOST)
    first, second = history.split(", ")
    assert first.startswith("<sip:+49301234560@127.0.0.1:5060?Reason=SIP%3Bcause%3D302")
    assert first.endswith(">;index=1")
    assert second == "<sip:201@10.0.0.5>;index=1.1;mp=1"
    assert asserted_identity("+491715550100", HOST) == "<sip:+491715550100@127.0.0.1:5060>"


def test_reason_header_drops_quotes_from_text() -> None:
    assert reason_header(480, 'No "one" answered') == 'SIP;cause=480;text="No one answered"'


def test_resolve_target_applies_routes_and_trunk() -> None:
    routes = {"office": "127.0.0.1:5070"}
    assert resolve_target("sip:201@office", routes, None) == "sip:201@127.0.0.1:5070"
    assert resolve_target("sip:201@office;transport=udp", routes, None) == (
        "sip:201@127.0.0.1:5070;transport=udp"
    )
    assert resolve_target("tel:+491701234567", routes, "127.0.0.1:5080") == (
        "sip:+491701234567@127.0.0.1:5080"
    )
    assert resolve_target("sip:a@127.0.0.1:5090", {}, None) == "sip:a@127.0.0.1:5090"
    with pytest.raises(UnroutableTarget, match="'tel:\\+491701234567'"):
        resolve_target("tel:+491701234567", routes, None)
    with pytest.raises(UnroutableTarget):
        resolve_target("sip:201@heimbuero", routes, None)
    with pytest.raises(UnroutableTarget):
        resolve_target("mailto:x@example.org", routes, None)


INVITE = (
    "INVITE sip:%2B49301234560@127.0.0.1:5060;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK1\r\n"
    'f: "Kunde \\"A\\"" <sip:+491715550100@127.0.0.1>;tag=1\r\n'
    "P-Asserted-Identity: <sip:+491715550199@127.0.0.1>,\r\n"
    " <tel:+491715550199>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_incoming_invite_fields_are_read_from_the_wire_text() -> None:
    ruri = request_uri(INVITE)
    assert ruri == "sip:%2B49301234560@127.0.0.1:5060;user=phone"
    assert uri_user(ruri) == "+49301234560"
    sender = parse_name_addr(header_values(INVITE, "from")[0])
    assert sender.display == 'Kunde "A"'
    assert sender.user == "+491715550100"
    assert header_values(INVITE, "P-Asserted-Identity") == [
        "<sip:+491715550199@127.0.0.1>, <tel:+491715550199>"
    ]
    assert header_values(INVITE, "diversion") == []
    assert request_uri("garbage") is None


def test_name_addr_forms() -> None:
    assert parse_name_addr("sip:a@b;tag=1").uri == "sip:a@b"
    assert parse_name_addr("Bob <sip:bob@b>").display == "Bob"
    assert parse_name_addr("<tel:+4930>").user == "+4930"
    assert uri_user("sip:example.org") is None
    assert uri_user("http://x") is None


def test_header_tag_reads_the_tag_of_from_and_to() -> None:
    message = (
        'SIP/2.0 200 OK\r\nFrom: "A" <sip:a@h;transport=udp>;tag=abc\r\n'
        "t: <sip:b@h>;x=1;TAG=de-f\r\nCall-ID: 1\r\n\r\n"
    )
    assert header_tag(message, "from") == "abc"
    assert header_tag(message, "to") == "de-f"
    assert header_tag("INVITE sip:x SIP/2.0\r\nTo: <sip:b@h;tag=no>\r\n\r\n", "to") is None
    assert header_tag("INVITE sip:x SIP/2.0\r\n\r\n", "from") is None
