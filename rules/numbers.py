"""Phone numbers: E.164 normalisation with ``phonenumbers``, cached for the hot path."""

from __future__ import annotations

import functools
import re

import phonenumbers

_E164 = re.compile(r"^\+[1-9]\d{5,14}$")
_PUNCTUATION = re.compile(r"[\s\-/().]")
_ROUTING: dict[tuple[str, str], str] = {}
_ROUTING_MAX = 65536
ANONYMOUS_WORDS = frozenset({"", "anonymous", "unknown", "restricted", "withheld", "private"})


@functools.lru_cache(maxsize=16384)
def normalize_number(raw: str, region: str = "DE") -> str | None:
    """``"+49 2331 987654-0"`` or ``"02331 9876540"`` -> ``"+4923319876540"``; None if not valid.

    ``region`` decides how a national number (leading 0) is read.
    """
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:].split(";", 1)[0]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def routing_number(raw: str, region: str) -> str:
    """The form a number from the network takes inside ``decide``: cheap for E.164 input.

    A number already in E.164 syntax is taken as it is: the network delivered it, and a full
    validity check would cost ~60 µs on the hot path. Anything else goes through the cached
    :func:`normalize_number`; what still cannot be read is kept verbatim (it will match no list).
    """
    key = (raw, region)
    found = _ROUTING.get(key)
    if found is None:
        user = sip_user(raw)
        found = user if _E164.match(user) else normalize_number(user, region) or raw
        if len(_ROUTING) >= _ROUTING_MAX:
            _ROUTING.clear()  # a crude bound; refilling costs microseconds per number
        _ROUTING[key] = found
    return found


def normalize_prefix(raw: str, region: str) -> str | None:
    """``"+49 171"`` / ``"0171"`` / ``"0049 171"`` -> ``"+49171"``; None if it is no prefix."""
    text = _PUNCTUATION.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("0"):
        text = f"+{phonenumbers.country_code_for_region(region)}{text[1:]}"
    if re.fullmatch(r"\+[1-9]\d{0,14}", text):
        return text
    return None


def sip_user(raw: str) -> str:
    """``"sip:+4917012345@carrier;user=phone"`` -> ``"+4917012345"``; other text unchanged."""
    text = raw.strip()
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() in ("sip", "sips"):
        return rest.split("@", 1)[0].split(";", 1)[0]
    return text


def caller_number(raw: str | None, region: str) -> str | None:
    """A caller as ``decide`` sees it: None when withheld, else :func:`routing_number`.

    RFC 3323 §4.1.1.3: a withheld identity arrives as ``<sip:anonymous@anonymous.invalid>``.
    """
    if raw is None or sip_user(raw).lower() in ANONYMOUS_WORDS:
        return None
    return routing_number(raw, region)
