"""MQTT topic names and payloads (pure). Documented for users in docs/mqtt.md.

::

    rufweiche/v1/status                                 "online"/"offline" (retained, last will)
    rufweiche/v1/<tenant>/person/<person>/presence      state JSON (retained, QoS 1)
    rufweiche/v1/<tenant>/person/<person>/presence/set  command JSON (we subscribe)
    rufweiche/v1/<tenant>/person/<person>/override/set  day/night: "service" | "normal" (issue 18)
    rufweiche/v1/<tenant>/voicemail                     a new voicemail (event, QoS 1, not retained)
    rufweiche/v1/<tenant>/dictation                     a new dictation (event, QoS 1, not retained)
    homeassistant/sensor/rufweiche_<t>_<p>/config       Home Assistant discovery (retained)

Tenant and person ids become topic levels as they are, so they may not contain ``/``,
``+``, ``#`` or NUL (MQTT 3.1.1 §4.7.1); :meth:`Topics.presence` refuses such ids with a
:class:`~presence.errors.TopicError` and the bridge leaves that person out, logged.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from presence.errors import PayloadError, TopicError
from presence.model import NOTE_MAX, Key, PresenceRecord, PresenceSource
from rules.presence import PresenceState

PREFIX = "rufweiche/v1"
"""The default topic prefix: the one place it is written."""
# message: a Telefonnotiz for the owner; missed: a missed call; override: day/night (issue 18)
EVENT_KINDS = ("voicemail", "dictation", "message", "missed", "override")
"""Events the switch announces per tenant (``<prefix>/<tenant>/<kind>``)."""
ONLINE = "online"
OFFLINE = "offline"
COMMAND_MAX_BYTES = 2048
"""Larger command payloads are refused unread: a command is a state, a note and a time."""

_FORBIDDEN_IN_LEVEL = re.compile(r"[/+#\x00]")
_HA_SAFE = re.compile(r"[A-Za-z0-9-]+")


def check_level(kind: str, value: str) -> str:
    """``value`` if it can be one MQTT topic level, else :class:`TopicError`."""
    if not value or _FORBIDDEN_IN_LEVEL.search(value) or len(value.encode()) > 200:
        raise TopicError(value, f"{kind} id cannot be an MQTT topic level")
    return value


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under a configurable prefix (default :data:`PREFIX`)."""

    prefix: str = PREFIX
    discovery_prefix: str = "homeassistant"

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def command_filter(self) -> str:
        return f"{self.prefix}/+/person/+/presence/set"

    @property
    def override_filter(self) -> str:
        """Day/night of an owner (issue 18): ``service`` sends his calls to the service now
        (his presence away), ``normal`` brings them back (available)."""
        return f"{self.prefix}/+/person/+/override/set"

    def override(self, tenant: str, person: str) -> str:
        return (
            f"{self.prefix}/{check_level('tenant', tenant)}/person/"
            f"{check_level('person', person)}/override/set"
        )

    def presence(self, tenant: str, person: str) -> str:
        return (
            f"{self.prefix}/{check_level('tenant', tenant)}/person/"
            f"{check_level('person', person)}/presence"
        )

    def command(self, tenant: str, person: str) -> str:
        return self.presence(tenant, person) + "/set"

    def event(self, tenant: str, kind: str) -> str:
        """``<prefix>/<tenant>/voicemail`` or ``.../dictation`` (one of :data:`EVENT_KINDS`)."""
        if kind not in EVENT_KINDS:
            raise TopicError(kind, f"is not an event kind, one of {EVENT_KINDS}")
        return f"{self.prefix}/{check_level('tenant', tenant)}/{kind}"

    def parse_command(self, topic: str) -> Key:
        """(tenant, person) of a command topic; :class:`TopicError` for any other topic."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise TopicError(topic, f"does not start with {head!r}")
        levels = topic[len(head) :].split("/")
        if len(levels) != 5 or levels[1] != "person" or levels[3:] not in COMMAND_KINDS:
            raise TopicError(topic, "is not <tenant>/person/<person>/presence/set")
        tenant, person = levels[0], levels[2]
        if not tenant or not person:
            raise TopicError(topic, "has an empty tenant or person level")
        return tenant, person

    def discovery(self, tenant: str, person: str) -> str:
        return f"{self.discovery_prefix}/sensor/{discovery_object_id(tenant, person)}/config"


def discovery_object_id(tenant: str, person: str) -> str:
    """``rufweiche_<tenant>_<person>``; Home Assistant allows only ``[A-Za-z0-9_-]`` here.

    Ids outside ``[A-Za-z0-9-]`` are folded to ``_`` and get a short hash of the real ids, so
    that ``a_b``/``c`` and ``a``/``b_c`` cannot end up as the same entity.
    """
    if _HA_SAFE.fullmatch(tenant) and _HA_SAFE.fullmatch(person):
        return f"rufweiche_{tenant}_{person}"
    fold = re.compile(r"[^A-Za-z0-9-]")
    digest = hashlib.sha1(f"{tenant}\x00{person}".encode(), usedforsecurity=False).hexdigest()[:8]
    return f"rufweiche_{fold.sub('_', tenant)}_{fold.sub('_', person)}_{digest}"


# ---------------------------------------------------------------------- commands


class PresenceCommand(BaseModel):
    """A request to set a person's state (MQTT ``…/presence/set`` payload, HTTP PUT body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: PresenceState
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    until: AwareDatetime | None = None


COMMAND_KINDS = (["presence", "set"], ["override", "set"])
OVERRIDE_WORDS = {
    "service": PresenceState.AWAY,
    "night": PresenceState.AWAY,
    "on": PresenceState.AWAY,
    "normal": PresenceState.AVAILABLE,
    "day": PresenceState.AVAILABLE,
    "off": PresenceState.AVAILABLE,
}


def is_override_topic(topic: str) -> bool:
    return topic.endswith("/override/set")


def decode_override(payload: bytes | str) -> PresenceCommand:
    """Day/night (issue 18): ``service``/``night``/``on`` or ``normal``/``day``/``off``, or
    JSON ``{"override": "service", "until": "…"}``; the owner's presence away or available."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > COMMAND_MAX_BYTES:
        raise PayloadError(f"override payload of {len(raw)} bytes is over {COMMAND_MAX_BYTES}")
    text = raw.decode("utf-8", errors="replace").strip()
    until = None
    word = text
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"override payload is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or set(data) - {"override", "until"}:
            raise PayloadError('override payload: expected {"override": …, "until": …}')
        word, until = str(data.get("override", "")), data.get("until")
    state = OVERRIDE_WORDS.get(word.lower())
    if state is None:
        raise PayloadError(f"override {word[:40]!r}: not one of {', '.join(OVERRIDE_WORDS)}")
    try:
        return PresenceCommand.model_validate({"state": state, "until": until})
    except ValidationError as exc:
        raise PayloadError(describe_validation(exc)) from None


def decode_command(payload: bytes | str) -> PresenceCommand:
    """Decode a command: a JSON object, or for simple buttons a bare state word (``away``)."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > COMMAND_MAX_BYTES:
        raise PayloadError(f"command payload of {len(raw)} bytes is over {COMMAND_MAX_BYTES}")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PayloadError(f"command payload is not UTF-8: {raw[:40]!r}") from None
    if not text:
        raise PayloadError("command payload is empty")
    if text.startswith(("{", "[", '"')):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadError(
                f"command payload is not valid JSON ({exc.msg}): {text[:60]!r}"
            ) from None
    else:
        data = {"state": text}
    if not isinstance(data, dict):
        raise PayloadError(f"command payload must be a JSON object, got {text[:60]!r}")
    try:
        return PresenceCommand.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(describe_validation(exc)) from None


def describe_validation(exc: ValidationError) -> str:
    """One line per problem, field first, the bad value with ``!r``."""
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "payload"
        if err["type"] == "enum":
            allowed = ", ".join(repr(s.value) for s in PresenceState)
            parts.append(f"{field} {err['input']!r} is not one of {allowed}")
        elif err["type"] == "missing":
            parts.append(f"{field} is missing")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{field} is not a known field (state, note, until)")
        else:
            parts.append(f"{field} {err['input']!r}: {err['msg']}")
    return "; ".join(parts)


# ---------------------------------------------------------------------- state messages


class PresenceMessage(BaseModel):
    """The published state of one person (MQTT retained payload and HTTP answer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str
    person: str
    state: PresenceState
    """Shown state: ``busy`` while on a call, else ``set_state``."""
    set_state: PresenceState
    """State set by the person; shown again when their calls end."""
    source: PresenceSource
    since: AwareDatetime
    note: str | None = None
    until: AwareDatetime | None = None
    then: PresenceState | None = None
    calls: int = Field(ge=0)


def message_of(tenant: str, person: str, record: PresenceRecord) -> PresenceMessage:
    return PresenceMessage(
        tenant=tenant,
        person=person,
        state=record.state,
        set_state=record.set_state,
        source=record.source,
        since=record.since,
        note=record.note,
        until=record.until,
        then=(record.then or PresenceState.AVAILABLE) if record.until is not None else None,
        calls=record.calls,
    )


def view_of(tenant: str, person: str, record: PresenceRecord) -> dict[str, Any]:
    """JSON-ready dict of :func:`message_of` (datetimes as ISO 8601 strings)."""
    return message_of(tenant, person, record).model_dump(mode="json")


def encode_state(tenant: str, person: str, record: PresenceRecord) -> bytes:
    return json.dumps(view_of(tenant, person, record), separators=(",", ":")).encode()


def decode_state(payload: bytes | str) -> PresenceMessage:
    """Parse a published state (for tests and for consumers written in Python)."""
    try:
        return PresenceMessage.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(describe_validation(exc)) from None


# ---------------------------------------------------------------------- Home Assistant


def discovery_config(
    topics: Topics, tenant: str, person: str, *, display_name: str | None = None
) -> bytes:
    """Home Assistant MQTT discovery config for one person's ``sensor`` (an enum sensor).

    The entity goes unavailable with the switch: its availability is the status topic,
    whose last will is ``offline``.
    """
    object_id = discovery_object_id(tenant, person)
    config = {
        "name": display_name or person,
        "unique_id": object_id,
        "object_id": object_id,
        "state_topic": topics.presence(tenant, person),
        "value_template": "{{ value_json.state }}",
        "json_attributes_topic": topics.presence(tenant, person),
        "availability_topic": topics.status,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device_class": "enum",
        "options": [s.value for s in PresenceState],
        "icon": "mdi:account-clock",
        "device": {
            "identifiers": [f"rufweiche_{tenant}"],
            "name": f"Rufweiche {tenant}",
            "manufacturer": "Rufweiche",
        },
    }
    return json.dumps(config, separators=(",", ":")).encode()
