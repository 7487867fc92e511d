"""PIDF presence documents (RFC 3863) with RPID activities (RFC 4480); pure build and parse.

The document for one person::

    <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:anna@office.example">
      <tuple id="rufweiche">
        <status><basic>open</basic></status>
        <timestamp>2026-11-25T10:00:00+01:00</timestamp>
      </tuple>
      <dm:person id="person">
        <rpid:activities until="2026-11-25T14:00:00+01:00"><rpid:away/></rpid:activities>
        <dm:note>on site</dm:note>
      </dm:person>
      <note>on site</note>
    </presence>

State mapping (the shown state, see :mod:`presence.model`):

========= ======= ==================== =============================================
state     basic   rpid:activities      why
========= ======= ==================== =============================================
available open    (none)               RFC 3863 §4.1.4: willing and able
busy      open    on-the-phone         RFC 4480 §3.2; still reachable (call waiting)
away      open    away                 RFC 4480 §3.2
dnd       open    busy                 RFC 4480 §3.2 "busy"; ``closed`` would make
                                       most softphones show the person as offline
offline   closed  (none)               RFC 3863 §4.1.4: not able to receive
========= ======= ==================== =============================================

The note goes both into the tuple-less top-level ``<note>`` (RFC 3863 §4.1.6; what
simple watchers show) and into the person's ``<dm:note>`` (RFC 4479 §3.3). ``until`` is
the RPID ``until`` attribute of ``<activities>`` (RFC 4480 §3.1).

The activities are written as empty elements without spaces (``<rpid:away/>``): baresip
1.0's subscriber finds them with the patterns ``<rpid:away[ \t]*/>`` and
``<rpid:busy[ \t]*/>`` and looks for ``open`` in ``<basic>``.

Delivery (SUBSCRIBE/NOTIFY through Kamailio) is elsewhere; nothing here does I/O.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from presence.errors import PidfError
from presence.model import PresenceRecord
from rules.presence import PresenceState

NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
NS_RPID = "urn:ietf:params:xml:ns:pidf:rpid"
CONTENT_TYPE = "application/pidf+xml"
MAX_DOCUMENT = 65536
"""Refuse larger documents unparsed: a presence document is a few hundred bytes."""

_ENTITY = re.compile(r"(sips?|pres):[^\s<>\"]+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# state -> (basic, activity or None); see the table in the module docstring.
_MAPPING: dict[PresenceState, tuple[str, str | None]] = {
    PresenceState.AVAILABLE: ("open", None),
    PresenceState.BUSY: ("open", "on-the-phone"),
    PresenceState.AWAY: ("open", "away"),
    PresenceState.DND: ("open", "busy"),
    PresenceState.OFFLINE: ("closed", None),
}


@dataclass(frozen=True, slots=True)
class PidfDocument:
    """What a PIDF document says, as far as Rufweiche cares."""

    entity: str
    basic: str | None
    """``open`` or ``closed``; ``None`` when no tuple carried either (a non-RFC value)."""
    activities: tuple[str, ...] = ()
    note: str | None = None
    until: datetime | None = None
    timestamp: datetime | None = None

    @property
    def state(self) -> PresenceState:
        """The presence state this document maps back to (inverse of the table).

        An unknown basic status with no activity reads as available, as a person missing
        from a snapshot does (rules/presence.py).
        """
        if self.basic == "closed":
            return PresenceState.OFFLINE
        for state, (_basic, activity) in _MAPPING.items():
            if activity is not None and activity in self.activities:
                return state
        return PresenceState.AVAILABLE


def build(
    entity: str,
    state: PresenceState,
    *,
    note: str | None = None,
    until: datetime | None = None,
    timestamp: datetime | None = None,
) -> bytes:
    """The PIDF document (UTF-8 XML) for one person in ``state``."""
    if not _ENTITY.fullmatch(entity):
        raise PidfError(f"entity {entity!r} is not a sip:, sips: or pres: URI")
    if note is not None and _NOT_XML.search(note):
        raise PidfError(f"note {note!r} holds characters XML 1.0 cannot carry")
    basic, activity = _MAPPING[state]
    # Written as text rather than through ElementTree: it cannot put the PIDF namespace
    # as default next to unqualified attributes, and watchers read the conventional prefixes.
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<presence xmlns="{NS_PIDF}" xmlns:dm="{NS_DM}" xmlns:rpid="{NS_RPID}"'
        f" entity={quoteattr(entity)}>",
        '  <tuple id="rufweiche">',
        f"    <status><basic>{basic}</basic></status>",
    ]
    if timestamp is not None:
        lines.append(f"    <timestamp>{_stamp('timestamp', timestamp)}</timestamp>")
    lines.append("  </tuple>")
    if activity is not None or note is not None:
        lines.append('  <dm:person id="person">')
        if activity is not None:
            attr = f' until="{_stamp("until", until)}"' if until is not None else ""
            lines.append(f"    <rpid:activities{attr}><rpid:{activity}/></rpid:activities>")
        if note is not None:
            lines.append(f"    <dm:note>{escape(note)}</dm:note>")
        lines.append("  </dm:person>")
    if note is not None:
        lines.append(f"  <note>{escape(note)}</note>")
    lines.append("</presence>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def document_for(entity: str, record: PresenceRecord) -> bytes:
    """The PIDF document of a person's record: shown state, note, until, and since as the
    tuple timestamp (RFC 3863 §4.1.7: when the status last changed)."""
    return build(entity, record.state, note=record.note, until=record.until, timestamp=record.since)


def parse(document: bytes | str) -> PidfDocument:
    """Read back a PIDF document (ours or a peer's); :class:`PidfError` when it is not one."""
    raw = document.encode() if isinstance(document, str) else document
    if len(raw) > MAX_DOCUMENT:
        raise PidfError(f"PIDF document of {len(raw)} bytes is over {MAX_DOCUMENT}")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        # No DTDs in PIDF (RFC 3863 §4 uses XML Schema); refusing them closes entity expansion.
        raise PidfError("PIDF document carries a DTD")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise PidfError(f"PIDF document is not well-formed XML: {exc}") from None
    if root.tag != f"{{{NS_PIDF}}}presence":
        raise PidfError(f"PIDF root element is {root.tag!r}, not presence")
    entity = root.get("entity")
    if not entity:
        raise PidfError("PIDF presence element has no entity attribute")
    basics = [(b.text or "").strip() for b in root.iter(f"{{{NS_PIDF}}}basic")]
    if not basics:
        raise PidfError("PIDF document has no basic status")
    # Several tuples (devices): open if any is (RFC 3863 §4.1.4 leaves merging to the watcher).
    # Anything but open/closed (baresip 1.0 sends "unknown" before its status is set) says
    # nothing: basic is None then.
    basic = "open" if "open" in basics else "closed" if "closed" in basics else None
    activities: list[str] = []
    until: datetime | None = None
    for acts in root.iter(f"{{{NS_RPID}}}activities"):
        if acts.get("until"):
            until = _parse_time("until", acts.get("until", ""))
        activities.extend(
            child.tag.split("}", 1)[1] for child in acts if child.tag.startswith(f"{{{NS_RPID}}}")
        )
    notes = [n.text for n in root.findall(f"{{{NS_PIDF}}}note") if n.text]
    if not notes:
        notes = [n.text for n in root.iter(f"{{{NS_DM}}}note") if n.text]
    stamps = [t.text for t in root.iter(f"{{{NS_PIDF}}}timestamp") if t.text]
    return PidfDocument(
        entity=entity,
        basic=basic,
        activities=tuple(activities),
        note=notes[0] if notes else None,
        until=until,
        timestamp=_parse_time("timestamp", stamps[0]) if stamps else None,
    )


def _stamp(field: str, value: datetime) -> str:
    if value.tzinfo is None:
        raise PidfError(f"{field} {value.isoformat()!r} has no time zone offset")
    return value.isoformat()


def _parse_time(field: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PidfError(f"PIDF {field} {text!r} is not an xs:dateTime") from None
    if value.tzinfo is None:
        raise PidfError(f"PIDF {field} {text!r} has no time zone offset")
    return value
