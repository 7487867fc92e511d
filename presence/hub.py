"""The presence hub: the one place in the supervisor that holds presence state.

Theory of operation
-------------------
The hub wraps a :class:`~presence.model.PresenceBook` (pure) and adds what needs the
event loop: a clock, a task that applies ``until`` times when they pass, and fan-out of
changes. Every mutator is a plain (non-async) method, so a worker's event handler, an MQTT
message or an HTTP request changes the state in one step, with no await in between.

Consumers learn about changes in one of two ways:

* :meth:`PresenceHub.watch` gives a :class:`Watch`, a *coalescing* subscription: it
  collects the keys (tenant, person) that changed, and :meth:`Watch.next_batch` hands
  them over. The consumer then reads the current records. It never overflows (at most
  one entry per person) and a slow consumer skips intermediate states rather than
  falling behind — what the MQTT bridge and the store want: the last state, not the
  history.
* :meth:`PresenceHub.add_listener` calls a plain function for each changed key,
  synchronously, right after the change (for replicating snapshots to workers).

``snapshot(tenant)`` is the rules' view: an immutable ``Mapping[person, PresenceState]``
rebuilt only when the tenant changes, and checked against the next ``until`` on each
call, so it is right even between two runs of the expiry task.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self, TypeVar

from presence.errors import PresenceValueError
from presence.model import Key, PresenceBook, PresenceRecord, PresenceSource
from rules.presence import PresenceState

if TYPE_CHECKING:
    from presence.topics import PresenceCommand

log = logging.getLogger(__name__)

Listener = Callable[[Key, PresenceRecord | None], None]
"""Called with (tenant, person) and the new record, ``None`` when the person left the directory."""

EXPIRY_RECHECK = 60.0
"""Longest sleep of the expiry task: wall-clock steps (NTP) are noticed within this time."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Watch:
    """Coalescing change feed; see the module docstring. Use as a context manager."""

    def __init__(self, hub: PresenceHub) -> None:
        self._hub = hub
        self._pending: set[Key] = set()
        self._ready = asyncio.Event()

    def add(self, keys: Collection[Key]) -> None:
        if keys:
            self._pending.update(keys)
            self._ready.set()

    def mark_all(self) -> None:
        """Report every current person again (e.g. to republish after a reconnect)."""
        self.add(self._hub.keys())

    @property
    def pending(self) -> frozenset[Key]:
        return frozenset(self._pending)

    async def next_batch(self) -> set[Key]:
        """Wait until something changed; return the changed keys and forget them."""
        await self._ready.wait()
        self._ready.clear()
        batch, self._pending = self._pending, set()
        return batch

    def take(self) -> set[Key]:
        """The changed keys without waiting (possibly empty)."""
        self._ready.clear()
        batch, self._pending = self._pending, set()
        return batch

    def close(self) -> None:
        self._hub._watches.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PresenceHub:
    """Holds the book, applies expiry, fans out changes. Enter it (``async with``) to run
    the expiry task; without it, ``until`` still applies lazily on every read."""

    def __init__(
        self,
        directory: Mapping[str, Collection[str]],
        *,
        records: Mapping[Key, PresenceRecord] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._clock = clock
        self._book = PresenceBook(directory, clock(), records)
        self._watches: builtins.set[Watch] = builtins.set()
        self._listeners: list[Listener] = []
        self._expiring: builtins.set[Key] = builtins.set()
        self._next_expiry: datetime | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Keys the book reported during construction (new or dropped people) are for the
        # first watchers; seed them so a store forgets dropped people.
        self._initial = self._book.take_changes()
        self._track_expiry(self._book.keys())

    # ------------------------------------------------------------------ reading

    @property
    def directory(self) -> Mapping[str, frozenset[str]]:
        return self._book.directory

    def snapshot(self, tenant: str) -> Mapping[str, PresenceState]:
        """Immutable ``person -> state`` for the rules (empty for an unknown tenant)."""
        self._expire_if_due()
        return self._book.snapshot(tenant)

    def record(self, tenant: str, person: str) -> PresenceRecord:
        """The record of a known person; :class:`~presence.errors.UnknownPersonError` else."""
        self._expire_if_due()
        return self._book.record(tenant, person)

    def get(self, key: Key) -> PresenceRecord | None:
        self._expire_if_due()
        return self._book.get(key)

    def people(self, tenant: str) -> list[tuple[str, PresenceRecord]]:
        self._expire_if_due()
        return list(self._book.people(tenant))

    def keys(self) -> list[Key]:
        return self._book.keys()

    # ------------------------------------------------------------------ changing

    def set(
        self,
        tenant: str,
        person: str,
        state: PresenceState | str,
        *,
        source: PresenceSource | str,
        note: str | None = None,
        until: datetime | None = None,
    ) -> PresenceRecord:
        """Set a person's state (phone feature code, MQTT, web, …). Raises
        :class:`~presence.errors.PresenceError` subclasses for unknown people or bad values."""
        state = _enum(PresenceState, "state", state)
        source = _enum(PresenceSource, "source", source)
        self._expire_if_due()
        before = self._book.record(tenant, person).state
        record = self._book.assign(
            tenant, person, state, source=source, now=self._clock(), note=note, until=until
        )
        log.info(
            "presence set tenant=%s person=%s state=%s shown=%s->%s source=%s until=%s",
            tenant,
            person,
            state,
            before,
            record.state,
            source,
            until.isoformat() if until else "-",
        )
        self._flush()
        return record

    def apply(
        self, tenant: str, person: str, command: PresenceCommand, *, source: PresenceSource
    ) -> PresenceRecord:
        """:meth:`set` as a decoded command asks (MQTT ``…/presence/set``, HTTP PUT)."""
        return self.set(
            tenant, person, command.state, source=source, note=command.note, until=command.until
        )

    def call_started(self, tenant: str, person: str) -> PresenceRecord:
        self._expire_if_due()
        record = self._book.call_started(tenant, person, self._clock())
        log.debug(
            "presence call started tenant=%s person=%s calls=%d", tenant, person, record.calls
        )
        self._flush()
        return record

    def call_ended(self, tenant: str, person: str) -> PresenceRecord:
        self._expire_if_due()
        before = self._book.record(tenant, person)
        if before.calls == 0:
            log.warning("presence call ended without a start tenant=%s person=%s", tenant, person)
        record = self._book.call_ended(tenant, person, self._clock())
        self._flush()
        return record

    def replace_directory(self, directory: Mapping[str, Collection[str]]) -> None:
        """Take the people of a reloaded dial plan: new people start available, gone ones go."""
        self._book.replace_directory(directory, self._clock())
        self._flush()

    def expire_due(self) -> list[Key]:
        """Apply every ``until`` that has passed now; returns the keys that changed."""
        due = self._book.expire_due(self._clock())
        for tenant, person in due:
            log.info("presence until passed tenant=%s person=%s", tenant, person)
        self._flush()
        return due

    # ------------------------------------------------------------------ watching

    def watch(self) -> Watch:
        """A new coalescing change feed; the first one also gets the construction changes."""
        w = Watch(self)
        self._watches.add(w)
        w.add(self._initial)
        return w

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every change; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # ------------------------------------------------------------------ expiry task

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._expiry_loop(), name="presence-expiry")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _expiry_loop(self) -> None:
        while True:
            self._wake.clear()
            nxt = self._next_expiry
            if nxt is None:
                await self._wake.wait()
                continue
            delay = (nxt - self._clock()).total_seconds()
            if delay <= 0:
                self.expire_due()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, EXPIRY_RECHECK)):
                    await self._wake.wait()

    # ------------------------------------------------------------------ internals

    def _expire_if_due(self) -> None:
        if self._next_expiry is not None and self._next_expiry <= self._clock():
            self.expire_due()

    def _flush(self) -> None:
        changes = self._book.take_changes()
        if not changes:
            return
        self._initial = builtins.set()
        self._track_expiry(changes)
        for w in self._watches:
            w.add(changes)
        for key in sorted(changes):
            record = self._book.get(key)
            for listener in list(self._listeners):
                try:
                    listener(key, record)
                except Exception:
                    # A broken consumer must not stop presence for everybody else.
                    log.exception("presence listener %r failed tenant=%s", listener, key[0])

    def _track_expiry(self, keys: Collection[Key]) -> None:
        touched = False
        for key in keys:
            record = self._book.get(key)
            if record is not None and record.until is not None:
                self._expiring.add(key)
                touched = True
            elif key in self._expiring:
                self._expiring.discard(key)
                touched = True
        if touched:
            untils = [self._book.get(k) for k in self._expiring]
            self._next_expiry = min(
                (r.until for r in untils if r is not None and r.until is not None), default=None
            )
            self._wake.set()


_E = TypeVar("_E", PresenceState, PresenceSource)


def _enum(kind: type[_E], field: str, value: _E | str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in kind)
        raise PresenceValueError(field, value, f"is not one of {allowed}") from None
