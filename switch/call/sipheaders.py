"""Pure SIP text helpers for the B2BUA worker: what the callee sees, and what a status means.

Nothing here touches a socket or pjsua2. The worker builds the From, P-Asserted-Identity,
Diversion and History-Info of every outbound INVITE from these functions, classifies the
final status of an outbound leg for the dial plan, and picks the few fields it needs out of
the raw text of an incoming INVITE (pjsua2 hands the whole message over as a string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from rules.decision import Failure
from switch.errors import UnroutableTarget

BUSY_STATUSES = frozenset({486, 600})
NO_ANSWER_STATUSES = frozenset({408, 480, 487})
DECLINED_STATUSES = frozenset({603})


def classify(status: int) -> Failure:
    """The dial-plan failure class of an outbound leg's final status (RFC 3261 §21).

    487 only reaches a flow when the target itself ended its ringing, so it counts as no
    answer; transport errors arrive as 408 (timer B, RFC 3261 §17.1.1.2) or 503.
    """
    if status in BUSY_STATUSES:
        return Failure.BUSY
    if status in NO_ANSWER_STATUSES:
        return Failure.NO_ANSWER
    if status in DECLINED_STATUSES:
        return Failure.DECLINED
    return Failure.UNREACHABLE


def quote_display(display: str) -> str:
    """A quoted-string for a display name (RFC 3261 §25.1: escape backslash and quote)."""
    cleaned = "".join(ch for ch in display if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number_uri(number: str, host: str) -> str:
    """``sip:<number>@host`` for an E.164 number or user part; a full URI is kept as is."""
    if number.startswith(("sip:", "sips:", "tel:")):
        return number
    return f"sip:{quote(number, safe='+*#-.!~()')}@{host}"


def from_header(display: str, caller: str | None, host: str) -> str:
    """The From of an outbound INVITE: the original caller, named for the business.

    An anonymous caller keeps RFC 3323's anonymous URI so the callee still sees the
    business in the display name.
    """
    uri = number_uri(caller, host) if caller else "sip:anonymous@anonymous.invalid"
    return f"{quote_display(display)} <{uri}>"


def asserted_identity(caller: str, host: str) -> str:
    """P-Asserted-Identity (RFC 3325 §9.1) naming the original caller."""
    return f"<{number_uri(caller, host)}>"


def diversion(diverted_from: str, host: str) -> str:
    """Diversion (RFC 5806 §4): the business number that forwarded the call."""
    return f"<{number_uri(diverted_from, host)}>;reason=unconditional;counter=1"


def history_info(diverted_from: str, target_uri: str, host: str) -> str:
    """History-Info (RFC 7044 §4): the business number, then the target it was mapped to.

    The first entry carries the Reason of the retargeting (cause 302 = unconditional
    forwarding, RFC 4458 §4.1 as used by RFC 7044 §9.3); the target entry is "mp" because
    the dial plan mapped the called user to another user (RFC 7044 §4.2.1).
    """
    business = number_uri(diverted_from, host)
    reason = quote('SIP;cause=302;text="Unconditional"', safe="")
    return f"<{business}?Reason={reason}>;index=1, <{target_uri}>;index=1.1;mp=1"


def reason_header(status: int, text: str) -> str:
    """Reason (RFC 3326 §2) for a final response, e.g. the 480 when no target answered."""
    return f'SIP;cause={status};text="{text.replace(chr(34), "")}"'


def resolve_target(uri: str, routes: Mapping[str, str], trunk: str | None) -> str:
    """The SIP URI an outbound INVITE goes to, after applying ``--route`` and ``--trunk``.

    ``sip:201@office`` with route ``office=127.0.0.1:5070`` becomes
    ``sip:201@127.0.0.1:5070``; ``tel:+49...`` goes to the trunk as ``sip:+49...@trunk``.
    A SIP URI whose host is an address (no route of that name) is dialled as written.
    """
    if uri.startswith("tel:"):
        if trunk is None:
            raise _unroutable(uri)
        number = uri[4:].split(";", 1)[0]
        return f"sip:{number}@{trunk}"
    match = _SIP_URI.match(uri)
    if match is None:
        raise _unroutable(uri)
    scheme, user, host, rest = match.group("scheme", "user", "host", "rest")
    if host in routes:
        host = routes[host]
    elif not _ADDRESS.match(host):
        raise _unroutable(uri)
    return f"{scheme}:{user + '@' if user else ''}{host}{rest or ''}"


_SIP_URI = re.compile(r"^(?P<scheme>sips?):(?:(?P<user>[^@;?]+)@)?(?P<host>[^;?>]+)(?P<rest>.*)$")
_ADDRESS = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$")


# ----------------------------------------------------------------- incoming INVITE text


@dataclass(frozen=True, slots=True)
class NameAddr:
    display: str | None
    uri: str
    user: str | None


_NAME_ADDR = re.compile(r'^\s*(?:"(?P<q>(?:[^"\\]|\\.)*)"|(?P<t>[^<"]*?))\s*<(?P<uri>[^>]*)>')
_USER = re.compile(r"^(?:sips?|tel):(?P<user>[^@;?>]+)")


def uri_user(uri: str) -> str | None:
    """The user part of a sip:/sips: URI, or the number of a tel: URI (unescaped)."""
    match = _USER.match(uri.strip())
    if match is None:
        return None
    user = match.group("user")
    if uri.strip().startswith(("sip:", "sips:")) and "@" not in uri:
        return None
    return _unescape(user)


def _unescape(text: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def parse_name_addr(value: str) -> NameAddr:
    """Split ``"Name" <sip:user@host>;tag=x`` (or a bare addr-spec) into its parts."""
    match = _NAME_ADDR.match(value)
    if match is not None:
        quoted, token, uri = match.group("q", "t", "uri")
        display = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (token or None)
    else:
        display, uri = None, value.split(";", 1)[0].strip()
    return NameAddr(display=display or None, uri=uri, user=uri_user(uri))


def header_tag(message: str, name: str) -> str | None:
    """The ``tag`` parameter of header ``name`` (From or To, RFC 3261 §19.3), if any."""
    values = header_values(message, name)
    if not values:
        return None
    params = values[0].rsplit(">", 1)[-1] if ">" in values[0] else values[0]
    match = re.search(r";\s*tag\s*=\s*([^;\s,>]+)", params, re.IGNORECASE)
    return match.group(1) if match else None


_COMPACT = {"f": "from", "t": "to", "i": "call-id", "m": "contact", "v": "via"}


def header_values(message: str, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive, compact forms too, RFC 3261 §7.3.3)."""
    head = message.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    wanted = name.lower()
    values: list[str] = []
    current: list[str] | None = None
    for line in head.splitlines()[1:]:
        if line[:1] in (" ", "\t") and current is not None:
            current.append(line.strip())  # RFC 3261 §7.3.1 line folding
            continue
        if current is not None:
            values.append(" ".join(current))
            current = None
        hname, sep, value = line.partition(":")
        hname = hname.strip().lower()
        if sep and _COMPACT.get(hname, hname) == wanted:
            current = [value.strip()]
    if current is not None:
        values.append(" ".join(current))
    return values


def request_uri(message: str) -> str | None:
    """The request-URI of a request's start line (RFC 3261 §7.1)."""
    first = message.split("\n", 1)[0].strip().split(" ")
    return first[1] if len(first) == 3 else None


def _unroutable(uri: str) -> UnroutableTarget:
    return UnroutableTarget(
        f"target {uri!r}: no route for its host and no trunk for tel: URIs", target=uri
    )
