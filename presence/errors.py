"""The presence package's one error tree.

::

    PresenceError                  base; never shown to a user with a traceback
    ├── UnknownTenantError         .tenant — not in the directory
    ├── UnknownPersonError         .tenant, .person — not in the tenant's directory
    ├── PresenceValueError         .field, .value — a value the model refuses (until in the past, …)
    ├── PayloadError               .reason — an MQTT/HTTP payload that does not decode
    ├── TopicError                 .topic — not our topic, or an id unfit for a topic level
    └── PidfError                  .reason — a PIDF document that does not parse

The I/O layers (MQTT bridge, HTTP handlers) catch :class:`PresenceError`, log it or turn it
into a 4xx answer, and carry on: bad input from outside is never fatal.
"""

from __future__ import annotations


class PresenceError(Exception):
    """Base of every error the presence package raises on purpose."""


class UnknownTenantError(PresenceError):
    def __init__(self, tenant: str) -> None:
        super().__init__(f"tenant {tenant!r} is not known")
        self.tenant = tenant


class UnknownPersonError(PresenceError):
    def __init__(self, tenant: str, person: str) -> None:
        super().__init__(f"person {person!r} is not known in tenant {tenant!r}")
        self.tenant = tenant
        self.person = person


class PresenceValueError(PresenceError):
    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field} {value!r} {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class PayloadError(PresenceError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TopicError(PresenceError):
    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"topic {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


class PidfError(PresenceError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
