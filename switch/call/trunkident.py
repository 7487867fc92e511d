"""Pure per-trunk SIP identity: number formats, inbound DIDs, the headers of a forwarded leg.

A real German trunk wants the presented number in one header (P-Preferred-Identity for
Telekom and sipgate, P-Asserted-Identity for others, or only the From user), in one format
(``+49…``, ``49…``, ``0049…`` or national ``0…``) and with the provider's domain as host —
never the worker's own address (../shared/TRUNKS.md §1.7). :class:`IdentityPolicy` says
which; :func:`forwarded_identity` builds From and the extra headers of an outbound INVITE
from it; :func:`normalize_did` turns whatever the provider sends as the called number into
E.164 (``49…`` is ``+49…``, never ``+4949…``). No I/O: the worker calls these.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal
from urllib.parse import quote

NumberFormat = Literal["+cc", "cc", "00cc", "national"]
IdentityHeader = Literal["ppi", "pai", "from"]
Forwarding = Literal["diversion", "history-info", "both", "none"]

_DIGITS = re.compile(r"^[0-9]{2,20}$")
# Mobile and geographic numbers only: CLIP no screening is refused for foreign, premium and
# service numbers by every provider read (TRUNKS.md §1.1, §1.3, §1.6).
_GERMAN_NOT_ALLOWED = re.compile(r"^\+49(?:900|137|138|180|118|110|112|19)")

MEDIASEC_HEADERS: tuple[tuple[str, str], ...] = (
    ("Security-Verify", "msrp-tls;mediasec"),
    ("Security-Verify", "sdes-srtp;mediasec"),
    ("Security-Verify", "dtls-srtp;mediasec"),
    ("Require", "mediasec"),
    ("Proxy-Require", "mediasec"),
)
"""Telekom's static mediasec supplement on INVITEs (draft-dawes-sipcore-mediasec-parameter,
Asterisk PR #791: Security-Verify plus Require/Proxy-Require on every INVITE)."""


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """How one trunk wants the presented number (every field from the trunk's profile)."""

    domain: str  # host of every identity URI: the provider's domain
    header: IdentityHeader = "pai"
    number_format: NumberFormat = "+cc"
    country: str = "49"
    clip_no_screening: bool = False  # booked: the original caller may be presented
    forwarding: Forwarding = "diversion"
    from_user: str | None = None  # SIP-ID / registration number for From (sipgate, Telekom)
    p_early_media: bool = False
    mediasec: bool = False


@dataclass(frozen=True, slots=True)
class TrunkLine:
    """A trunk as the worker knows it: its name (the edge's uacreg l_uuid), its policy and
    the tenants whose numbers it carries (a tenant's forwarded calls leave through it)."""

    name: str
    policy: IdentityPolicy
    tenants: frozenset[str] = field(default_factory=frozenset)


def format_number(e164: str, fmt: NumberFormat, country: str = "49") -> str:
    """An E.164 number (``+4930…``) in the trunk's format; a non-E.164 user part is kept."""
    if not e164.startswith("+") or not _DIGITS.match(e164[1:]):
        return e164
    digits = e164[1:]
    if fmt == "+cc":
        return e164
    if fmt == "cc":
        return digits
    if fmt == "00cc":
        return "00" + digits
    if digits.startswith(country):
        return "0" + digits[len(country) :]
    return "00" + digits  # national format of a foreign number is the international one


def normalize_did(user: str | None, country: str = "49") -> str | None:
    """The called number as E.164, whatever format the provider sent; None if not a number.

    ``+4930…`` stays, ``004930…`` and ``4930…`` become ``+4930…``, national ``030…`` becomes
    ``+4930…``. A number already starting with the country code never gets it twice.
    """
    if not user:
        return None
    text = user.strip().replace(" ", "").replace("-", "")
    if text.startswith("+"):
        return text if _DIGITS.match(text[1:]) else None
    if not _DIGITS.match(text):
        return None
    if text.startswith("00"):
        return "+" + text[2:]
    if text.startswith("0"):
        return f"+{country}{text[1:]}"
    if text.startswith(country):
        return "+" + text
    return None  # a bare subscriber number: no area code, not routable


def clip_allowed(caller: str | None, country: str = "49") -> bool:
    """CLIP no screening presents only numbers of the trunk's own country, no service numbers."""
    return bool(
        caller
        and caller.startswith("+" + country)
        and _DIGITS.match(caller[1:])
        and not (country == "49" and _GERMAN_NOT_ALLOWED.match(caller))
    )


def _uri(user: str, domain: str) -> str:
    return f"sip:{quote(user, safe='+*#-.!~()')}@{domain}"


def _display(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class LegIdentity:
    """From and the extra headers of one outbound INVITE toward a trunk."""

    from_header: str
    headers: tuple[tuple[str, str], ...]
    presented: str  # the number the callee should see (E.164), for the record and tests


def forwarded_identity(
    policy: IdentityPolicy,
    *,
    caller: str | None,
    business: str,
    display: str,
    target_uri: str,
    cause: int = 302,
) -> LegIdentity:
    """The identity of a leg the switch forwards to the network.

    With CLIP no screening and a presentable caller, the caller's number is presented;
    otherwise the business's own number, with the caller's number in the display name.
    A withheld caller (None) gets the business number and ``Privacy: id`` (RFC 3325 §9.3).
    Diversion (RFC 5806) / History-Info (RFC 7044) name the business number, in the trunk's
    format and domain.
    """
    fmt, cc, domain = policy.number_format, policy.country, policy.domain
    withheld = not caller or caller == "anonymous"
    show_caller = policy.clip_no_screening and not withheld and clip_allowed(caller, cc)
    presented = caller if show_caller and caller else business
    # The flow's display name already names the business and the caller ("Müller: +49…").
    name = display
    from_uri, headers = _identity(policy, presented, business)
    if withheld:
        headers.append(("Privacy", "id"))
    business_uri = _uri(format_number(business, fmt, cc), domain)
    reason = {302: "unconditional", 486: "user-busy", 408: "no-answer", 480: "no-answer"}
    if policy.forwarding in ("diversion", "both"):
        headers.append(
            ("Diversion", f"<{business_uri}>;reason={reason.get(cause, 'unknown')};counter=1")
        )
    if policy.forwarding in ("history-info", "both"):
        text = {302: "Unconditional", 486: "Busy", 408: "No Answer", 480: "No Answer"}
        why = quote(f'SIP;cause={cause};text="{text.get(cause, "Forwarded")}"', safe="")
        headers.append(
            ("History-Info", f"<{business_uri}?Reason={why}>;index=1, <{target_uri}>;index=1.1")
        )
    return LegIdentity(
        from_header=f"{_display(name)} <{from_uri}>",
        headers=(*headers, *_supplements(policy)),
        presented=presented,
    )


def _supplements(policy: IdentityPolicy) -> tuple[tuple[str, str], ...]:
    """The profile's headers on every INVITE to the trunk (P-Early-Media, mediasec)."""
    extra = (("P-Early-Media", "supported"),) if policy.p_early_media else ()
    return extra + (MEDIASEC_HEADERS if policy.mediasec else ())


def _identity(
    policy: IdentityPolicy, presented: str, business: str
) -> tuple[str, list[tuple[str, str]]]:
    """From's URI and the identity header of the profile: the From user alone (``from``),
    or From = SIP-ID / business number and PPI or PAI naming ``presented``."""
    fmt, cc, domain = policy.number_format, policy.country, policy.domain
    identity_uri = _uri(format_number(presented, fmt, cc), domain)
    if policy.header == "from":
        return identity_uri, []
    from_uri = _uri(policy.from_user or format_number(business, fmt, cc), domain)
    name_hdr = "P-Preferred-Identity" if policy.header == "ppi" else "P-Asserted-Identity"
    return from_uri, [(name_hdr, f"<{identity_uri}>")]


def outbound_identity(
    policy: IdentityPolicy, *, presented: str, display: str, privacy: bool
) -> LegIdentity:
    """The identity of a call the switch places for a business (a phone dialling out,
    ``*8<code>#``, click to call): ``presented`` (the business's number or the person's
    direct extension) in the header the trunk's profile prescribes, in its format and
    domain; ``Privacy: id`` (RFC 3323) and an anonymous display name on request."""
    from_uri, headers = _identity(policy, presented, presented)
    if privacy:
        headers.append(("Privacy", "id"))
    name = "Anonymous" if privacy else display
    return LegIdentity(
        from_header=f"{_display(name)} <{from_uri}>",
        headers=(*headers, *_supplements(policy)),
        presented=presented,
    )


def trunk_for(lines: tuple[TrunkLine, ...], tenant: str | None) -> TrunkLine | None:
    """The trunk a tenant's calls leave through: the one carrying its numbers, else the
    only trunk there is (a single-line office), else None (the legacy ``trunk:`` setting)."""
    for line in lines:
        if tenant is not None and tenant in line.tenants:
            return line
    return lines[0] if len(lines) == 1 else None


def line_to_json(line: TrunkLine) -> str:
    """The worker's ``--trunk-line`` argument (no secrets: the edge keeps the password)."""
    return json.dumps(
        {"name": line.name, "tenants": sorted(line.tenants), "policy": asdict(line.policy)},
        sort_keys=True,
    )


def line_from_json(text: str) -> TrunkLine:
    """Inverse of :func:`line_to_json`; ValueError for anything else."""
    data: Any = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("policy"), dict):
        raise ValueError(f"trunk line {text[:80]!r}: expected name, tenants, policy")
    known = {f.name for f in fields(IdentityPolicy)}
    unknown = set(data["policy"]) - known
    if unknown:
        raise ValueError(f"trunk line: unknown policy keys {sorted(unknown)}")
    return TrunkLine(
        name=str(data["name"]),
        policy=IdentityPolicy(**data["policy"]),
        tenants=frozenset(str(t) for t in data.get("tenants", ())),
    )


__all__ = [
    "MEDIASEC_HEADERS",
    "IdentityPolicy",
    "LegIdentity",
    "TrunkLine",
    "clip_allowed",
    "format_number",
    "forwarded_identity",
    "line_from_json",
    "line_to_json",
    "normalize_did",
    "outbound_identity",
    "trunk_for",
]
