"""Per-trunk identity and DID normalisation (switch/call/trunkident.py): pure."""

from __future__ import annotations

from typing import Any

import pytest

from switch.call.trunkident import (
    IdentityHeader,
    IdentityPolicy,
    TrunkLine,
    clip_allowed,
    format_number,
    forwarded_identity,
    line_from_json,
    line_to_json,
    normalize_did,
    outbound_identity,
    trunk_for,
)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+4923319876540", "+4923319876540"),
        ("4923319876540", "+4923319876540"),  # never +4949...
        ("004923319876540", "+4923319876540"),
        ("023319876540", "+4923319876540"),
        ("0043123456", "+43123456"),
        ("9876540", None),
        ("abc", None),
        ("", None),
    ],
)
def test_normalize_did(raw: str, e164: str | None) -> None:
    assert normalize_did(raw, "49") == e164


@pytest.mark.parametrize(
    ("fmt", "out"),
    [("+cc", "+4923319876540"), ("cc", "4923319876540"), ("00cc", "004923319876540"),
     ("national", "023319876540")],
)  # fmt: skip
def test_format_number(fmt: str, out: str) -> None:
    assert format_number("+4923319876540", fmt, "49") == out  # type: ignore[arg-type]
    assert normalize_did(out, "49") == "+4923319876540"


def test_foreign_number_in_national_format_is_international() -> None:
    assert format_number("+43123456", "national", "49") == "0043123456"


def test_clip_allowed_only_for_own_country_and_no_service_numbers() -> None:
    assert clip_allowed("+491715550100")
    assert not clip_allowed("+43123456")
    assert not clip_allowed("+49900123456")
    assert not clip_allowed(None)


SIPGATE = IdentityPolicy(domain="sipgate.de", header="ppi", number_format="cc",
                         from_user="1234567t0")  # fmt: skip


def test_sipgate_without_clip_presents_the_business() -> None:
    leg = forwarded_identity(
        SIPGATE, caller="+491715550100", business="+4923319876540",
        display="Mueller: +491715550100", target_uri="sip:491701234567@sipgate.de",
    )  # fmt: skip
    headers = dict(leg.headers)
    assert leg.from_header == '"Mueller: +491715550100" <sip:1234567t0@sipgate.de>'
    assert headers["P-Preferred-Identity"] == "<sip:4923319876540@sipgate.de>"
    assert headers["Diversion"].startswith("<sip:4923319876540@sipgate.de>;reason=unconditional")
    assert "History-Info" not in headers
    assert "Privacy" not in headers
    assert leg.presented == "+4923319876540"


def test_clip_no_screening_presents_a_german_caller_but_not_a_foreign_one() -> None:
    policy = IdentityPolicy(domain="t.de", header="pai", clip_no_screening=True,
                            forwarding="history-info")  # fmt: skip
    german = forwarded_identity(policy, caller="+491715550100", business="+4930111",
                                display="x", target_uri="sip:1@t.de")  # fmt: skip
    assert dict(german.headers)["P-Asserted-Identity"] == "<sip:+491715550100@t.de>"
    assert "cause%3D302" in dict(german.headers)["History-Info"]
    foreign = forwarded_identity(policy, caller="+43123456", business="+4930111",
                                 display="x", target_uri="sip:1@t.de")  # fmt: skip
    assert foreign.presented == "+4930111"


def test_withheld_caller_gets_privacy_id_and_mediasec_and_early_media() -> None:
    policy = IdentityPolicy(domain="tel.t-online.de", header="ppi", mediasec=True,
                            p_early_media=True)  # fmt: skip
    leg = forwarded_identity(policy, caller=None, business="+4930111", display="x",
                             target_uri="sip:1@x")  # fmt: skip
    names = [name for name, _ in leg.headers]
    assert ("Privacy", "id") in leg.headers
    assert "P-Early-Media" in names
    assert names.count("Security-Verify") == 3
    assert ("Require", "mediasec") in leg.headers


def test_identity_in_from_only() -> None:
    policy = IdentityPolicy(domain="gen.example", header="from", forwarding="none")
    leg = forwarded_identity(policy, caller="+491715550100", business="+4930111",
                             display="B", target_uri="sip:1@x")  # fmt: skip
    assert leg.from_header == '"B" <sip:+4930111@gen.example>'
    assert leg.headers == ()


def test_trunk_for_tenant_and_json_round_trip() -> None:
    a = TrunkLine("a", SIPGATE, frozenset({"mueller"}))
    b = TrunkLine("b", IdentityPolicy(domain="x"), frozenset({"huber"}))
    assert trunk_for((a, b), "huber") is b
    assert trunk_for((a, b), "other") is None
    assert trunk_for((a,), "other") is a
    assert line_from_json(line_to_json(a)) == a
    with pytest.raises(ValueError, match="unknown policy keys"):
        line_from_json('{"name": "a", "policy": {"domain": "x", "bogus": 1}}')


@pytest.mark.parametrize(
    ("header", "from_user", "expected_from", "expected_headers"),
    [
        # sipgate: From = SIP-ID, PPI names the business, 49... without plus
        ("ppi", "1234567e0", '"Tischlerei" <sip:1234567e0@sipgate.de>',
         [("P-Preferred-Identity", "<sip:49301234560@sipgate.de>")]),
        ("pai", None, '"Tischlerei" <sip:49301234560@sipgate.de>',
         [("P-Asserted-Identity", "<sip:49301234560@sipgate.de>")]),
        ("from", None, '"Tischlerei" <sip:49301234560@sipgate.de>', []),
    ],
)  # fmt: skip
def test_outbound_identity_follows_the_profile(
    header: IdentityHeader,
    from_user: str | None,
    expected_from: str,
    expected_headers: list[Any],
) -> None:
    policy = IdentityPolicy(
        domain="sipgate.de",
        header=header,
        number_format="cc",
        from_user=from_user,
    )
    leg = outbound_identity(policy, presented="+49301234560", display="Tischlerei", privacy=False)
    assert leg.from_header == expected_from
    assert list(leg.headers) == expected_headers
    assert leg.presented == "+49301234560"


def test_outbound_identity_with_privacy_and_the_profile_supplements() -> None:
    policy = IdentityPolicy(domain="tel.t-online.de", header="ppi", p_early_media=True)
    leg = outbound_identity(policy, presented="+49301234560", display="Tischlerei", privacy=True)
    assert leg.from_header.startswith('"Anonymous" <sip:+49301234560@tel.t-online.de>')
    assert leg.headers[:3] == (
        ("P-Preferred-Identity", "<sip:+49301234560@tel.t-online.de>"),
        ("Privacy", "id"),
        ("P-Early-Media", "supported"),
    )
