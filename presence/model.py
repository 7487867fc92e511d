"""Per-person presence: records and their transitions (pure, no I/O, no clock reads).

Theory of operation
-------------------
Each person of a tenant has one :class:`PresenceRecord`. It holds the state the person
(or a phone, MQTT client, web page or schedule) *set* — ``set_state`` — and the number of
calls the person's devices are in — ``calls``. What everybody sees is the *shown*
state, :attr:`PresenceRecord.state`: ``busy`` while ``calls > 0``, else ``set_state``.
So ``record.state`` is always the thing to display or route on. Because the set state
is kept apart from the call count, a change made during a call ("away" set from the web
while on the phone) takes effect when the last call ends, and a person returns to
whatever they were before the call without any history.

A set state may carry ``until`` (an aware datetime): when it passes, :func:`expire`
brings back ``then`` — the state that was set before, without an ``until`` of its
own — or ``available`` when there was none ("on site until 14:00", then back). The clock
comes in as ``now`` arguments; nothing here reads it.

``since`` is when the *shown* state began; it moves when a set state, a call start
(0 → 1), a call end (1 → 0) or an expiry changes what is shown.

:class:`PresenceBook` holds the records of all tenants, checks names against the
directory (tenant → persons, from the dial plans), builds the immutable per-tenant
snapshots the rules read, and collects the keys whose record changed until the caller
takes them (:meth:`PresenceBook.take_changes`) — the sans-I/O outgoing buffer that
:mod:`presence.hub` turns into notifications.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from presence.errors import PresenceValueError, UnknownPersonError, UnknownTenantError
from rules.presence import PresenceState

NOTE_MAX = 200
"""Longest note in characters: it has to fit a phone display and an MQTT sensor attribute."""

Key = tuple[str, str]
"""(tenant, person)"""


class PresenceSource(StrEnum):
    """Who set a state."""

    DEFAULT = "default"  # never set: the person is new in the directory
    PHONE = "phone"  # feature code dialled from a phone
    MQTT = "mqtt"  # command topic
    WEB = "web"  # HTTP API / page
    CALL = "call"  # a call is up (only ever the shown source, never a set_source)
    SCHEDULE = "schedule"  # an ``until`` passed


@dataclass(frozen=True, slots=True)
class PresenceRecord:
    set_state: PresenceState
    """The state set by the person (or a schedule); shown whenever no call is up."""
    set_source: PresenceSource
    """Who set ``set_state``."""
    since: datetime
    """When the shown state began."""
    note: str | None = None
    until: datetime | None = None
    """When the set state ends (aware). ``None``: until changed."""
    then: PresenceState | None = None
    """State to return to when ``until`` passes; ``None`` means available."""
    calls: int = 0
    """Calls the person's devices are in now."""

    @property
    def state(self) -> PresenceState:
        """The shown state: what the rules, MQTT, SIP and the dashboard see."""
        return PresenceState.BUSY if self.calls > 0 else self.set_state

    @property
    def source(self) -> PresenceSource:
        """Who caused the shown state (``call`` while a call is up)."""
        return PresenceSource.CALL if self.calls > 0 else self.set_source


def initial(now: datetime) -> PresenceRecord:
    """Record of a person nobody has set yet: available (as a person missing from a snapshot)."""
    _require_aware("now", now)
    return PresenceRecord(
        set_state=PresenceState.AVAILABLE, set_source=PresenceSource.DEFAULT, since=now
    )


def clean_note(note: str | None) -> str | None:
    """Strip a note; empty means none. Refuses control characters and overlong notes."""
    if note is None:
        return None
    stripped = note.strip()
    if not stripped:
        return None
    if len(stripped) > NOTE_MAX:
        raise PresenceValueError(
            "note", stripped[:40] + "…", f"is longer than {NOTE_MAX} characters"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in stripped):
        raise PresenceValueError("note", stripped, "contains control characters")
    return stripped


def assign(
    record: PresenceRecord,
    state: PresenceState,
    *,
    source: PresenceSource,
    now: datetime,
    note: str | None = None,
    until: datetime | None = None,
) -> PresenceRecord:
    """The person (or ``source``) sets ``state``; calls keep counting underneath."""
    _require_aware("now", now)
    note = clean_note(note)
    if until is not None:
        _require_aware("until", until)
        if until <= now:
            raise PresenceValueError("until", until.isoformat(), "is not in the future")
        # A temporary state on top of a temporary state returns to the permanent one below.
        then = record.set_state if record.until is None else record.then
    else:
        then = None
    shown_before = record.state
    new = replace(record, set_state=state, set_source=source, note=note, until=until, then=then)
    if new.state != shown_before:
        new = replace(new, since=now)
    return new


def call_started(record: PresenceRecord, now: datetime) -> PresenceRecord:
    """One more call is up on the person's devices."""
    _require_aware("now", now)
    new = replace(record, calls=record.calls + 1)
    return replace(new, since=now) if new.state != record.state else new


def call_ended(record: PresenceRecord, now: datetime) -> PresenceRecord:
    """One call ended. An end without a start (a lost event) leaves the record alone."""
    _require_aware("now", now)
    if record.calls == 0:
        return record
    new = replace(record, calls=record.calls - 1)
    return replace(new, since=now) if new.state != record.state else new


def expire(record: PresenceRecord, now: datetime) -> PresenceRecord:
    """Return to the earlier state when ``until`` has passed; else the record unchanged."""
    _require_aware("now", now)
    if record.until is None or record.until > now:
        return record
    new = replace(
        record,
        set_state=record.then or PresenceState.AVAILABLE,
        set_source=PresenceSource.SCHEDULE,
        note=None,
        until=None,
        then=None,
    )
    # The shown state changed at ``until``, not when somebody noticed.
    return replace(new, since=record.until) if new.state != record.state else new


def _require_aware(field: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PresenceValueError(field, value.isoformat(), "has no time zone offset")


class PresenceBook:
    """All records of all tenants, checked against the directory. Pure; not thread-safe.

    Every person of the directory has a record (:func:`initial` when nobody set one), so
    publishers always have something to show. Records given at construction for people
    no longer in the directory are dropped (and reported as changed, so a store can
    forget them).
    """

    def __init__(
        self,
        directory: Mapping[str, Collection[str]],
        now: datetime,
        records: Mapping[Key, PresenceRecord] | None = None,
    ) -> None:
        self._records: dict[Key, PresenceRecord] = {}
        self._directory: dict[str, frozenset[str]] = {}
        self._snapshots: dict[str, Mapping[str, PresenceState]] = {}
        self._changes: set[Key] = set()
        restored = dict(records or {})
        for key, record in restored.items():
            # Calls do not survive a restart: an old count could keep a person busy forever.
            self._records[key] = replace(record, calls=0)
        self.replace_directory(directory, now)
        self._changes -= {key for key in restored if key in self._records}
        self.expire_due(now)

    # ------------------------------------------------------------------ directory

    @property
    def directory(self) -> Mapping[str, frozenset[str]]:
        return MappingProxyType(self._directory)

    def replace_directory(self, directory: Mapping[str, Collection[str]], now: datetime) -> None:
        """Take a new directory (dial plan reload): new people start available, gone ones go."""
        new = {tenant: frozenset(people) for tenant, people in directory.items()}
        wanted = {(tenant, person) for tenant, people in new.items() for person in people}
        for key in [key for key in self._records if key not in wanted]:
            del self._records[key]
            self._changes.add(key)
        for key in sorted(wanted - self._records.keys()):
            self._records[key] = initial(now)
            self._changes.add(key)
        self._directory = new
        self._snapshots.clear()

    def check(self, tenant: str, person: str) -> Key:
        """The key of a known person; raises UnknownTenantError or UnknownPersonError."""
        people = self._directory.get(tenant)
        if people is None:
            raise UnknownTenantError(tenant)
        if person not in people:
            raise UnknownPersonError(tenant, person)
        return (tenant, person)

    # ------------------------------------------------------------------ reading

    def get(self, key: Key) -> PresenceRecord | None:
        """The record, or ``None`` for a person not (any more) in the directory."""
        return self._records.get(key)

    def record(self, tenant: str, person: str) -> PresenceRecord:
        return self._records[self.check(tenant, person)]

    def people(self, tenant: str) -> Iterator[tuple[str, PresenceRecord]]:
        if tenant not in self._directory:
            raise UnknownTenantError(tenant)
        for person in sorted(self._directory[tenant]):
            yield person, self._records[(tenant, person)]

    def keys(self) -> list[Key]:
        return sorted(self._records)

    def snapshot(self, tenant: str) -> Mapping[str, PresenceState]:
        """Immutable ``person -> shown state`` for the rules; empty for an unknown tenant.

        Built once per change of the tenant, so repeated calls on the hot path cost a dict
        lookup. (An unknown tenant routes as if everybody were available, as the rules say.)
        """
        snap = self._snapshots.get(tenant)
        if snap is None:
            people = self._directory.get(tenant, frozenset())
            snap = MappingProxyType(
                {person: self._records[(tenant, person)].state for person in sorted(people)}
            )
            if tenant in self._directory:
                self._snapshots[tenant] = snap
        return snap

    def next_expiry(self) -> datetime | None:
        return min((r.until for r in self._records.values() if r.until is not None), default=None)

    # ------------------------------------------------------------------ changing

    def assign(
        self,
        tenant: str,
        person: str,
        state: PresenceState,
        *,
        source: PresenceSource,
        now: datetime,
        note: str | None = None,
        until: datetime | None = None,
    ) -> PresenceRecord:
        key = self.check(tenant, person)
        return self._put(
            key,
            assign(self._records[key], state, source=source, now=now, note=note, until=until),
        )

    def call_started(self, tenant: str, person: str, now: datetime) -> PresenceRecord:
        key = self.check(tenant, person)
        return self._put(key, call_started(self._records[key], now))

    def call_ended(self, tenant: str, person: str, now: datetime) -> PresenceRecord:
        key = self.check(tenant, person)
        return self._put(key, call_ended(self._records[key], now))

    def expire_due(self, now: datetime) -> list[Key]:
        """Apply every ``until`` that has passed; returns the keys that changed."""
        due = [
            key
            for key, record in self._records.items()
            if record.until is not None and record.until <= now
        ]
        for key in due:
            self._put(key, expire(self._records[key], now))
        return sorted(due)

    def take_changes(self) -> set[Key]:
        """Keys changed since the last call (added, removed or altered records)."""
        changes, self._changes = self._changes, set()
        return changes

    def _put(self, key: Key, new: PresenceRecord) -> PresenceRecord:
        old = self._records[key]
        if new != old:
            self._records[key] = new
            self._changes.add(key)
            if new.state != old.state:
                self._snapshots.pop(key[0], None)
        return new
