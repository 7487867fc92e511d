"""SIP presence: people's PIDF documents published to the edge, for phones that SUBSCRIBE.

Theory of operation
-------------------
pjsua2 can act as a presence notifier only per account (DESIGN.md), so a worker cannot
serve watchers of arbitrary people. The edge (Kamailio, ``presence`` + ``presence_xml``)
can: it keeps one document per *presentity* and sends every subscribed phone a NOTIFY
(RFC 3856) whenever the document changes. :class:`PidfPublisher` feeds it. For each
changed person it builds the PIDF document (:func:`presence.pidf.document_for`, RFC 3863
with RPID activities) and hands it to an injected ``rpc`` callable::

    await rpc("pua.publish", uri, "3600", "presence", "application/pidf+xml",
              ".", ".", ".", ".", document)

On the real edge that is Kamailio's ``pua.publish`` (module ``pua_rpc``): ``pua`` sends a
PUBLISH (RFC 3903) to the edge itself and keeps the entity tag, so the next publish of the
same person *replaces* the document (``SIP-If-Match``, RFC 3903 §4.4) instead of adding one.
``switch/edge/`` (:meth:`Edge.rpc`) carries the call; nothing here imports ``switch``.

Presentity URIs: person ids are unique per tenant only, so the presentity of ``jan`` of
tenant ``tischlerei`` is ``sip:tischlerei.jan@<domain>`` (:func:`presentity_uri`), with
the edge's ``domain`` (its digest realm and alias). A phone SUBSCRIBEs to that URI.

The loop (one task):

* takes the coalesced changes of a hub :class:`~presence.hub.Watch` (a slow edge skips
  intermediate states, never falls behind), plus every person once at start;
* publishes each pending person; a failed publish is logged and retried after a backoff
  (``backoff_initial * 2**n``, capped, jittered 50-100 %) — never fatal. After
  ``MAX_FAILURES_PER_ROUND`` failures in one round it stops the round: the edge is
  probably down, and hammering it person by person helps nobody;
* publishes everyone again at ``refresh`` × ``expires`` after their last publish, before
  the edge lets the document expire (RFC 3903 §4.1);
* asks the edge for its main process id (``core.ps``, first entry) every
  ``probe_interval`` seconds; when it changed, the edge restarted with no documents, and
  everyone is published again. (Not ``core.uptime``'s ``up_since``: it has one-second
  resolution, and a restart within the same second went unnoticed in a test.) The edge
  also drops old documents at start (:func:`switch.edge.database.forget_presence`).

A person who left the directory is unpublished (``expires`` 0, RFC 3903 §4.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self

from presence.backoff import backoff_delay
from presence.errors import PresenceError
from presence.hub import PresenceHub
from presence.model import Key
from presence.pidf import CONTENT_TYPE, document_for

log = logging.getLogger(__name__)

Rpc = Callable[..., Awaitable[Any]]
"""``await rpc(method, *string_params)`` → the RPC result; raises on any failure."""

EVENT = "presence"  # RFC 3856 event package
MAX_FAILURES_PER_ROUND = 3
_URI_PART = re.compile(r"^[A-Za-z0-9_~!*'()-]+$")  # RFC 3261 §25.1 unreserved, minus "."


class PresentityError(PresenceError):
    """A tenant or person id that cannot be put into a SIP URI user part."""


def presentity_uri(tenant: str, person: str, domain: str) -> str:
    """``sip:<tenant>.<person>@<domain>``; the dot separates, so neither id may hold one."""
    for field, value in (("tenant", tenant), ("person", person)):
        if not _URI_PART.match(value):
            raise PresentityError(
                f"{field} {value!r} cannot be a SIP presentity: letters, digits and - _ ~ only"
            )
    return f"sip:{tenant}.{person}@{domain}"


class PidfPublisher:
    """Presence hub → edge presence server. ``async with PidfPublisher(hub, rpc, domain=...)``."""

    def __init__(
        self,
        hub: PresenceHub,
        rpc: Rpc,
        *,
        domain: str,
        expires: int = 3600,
        refresh: float = 0.8,
        probe_interval: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stop_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if expires < 1 or not 0 < refresh < 1:
            raise ValueError(f"expires {expires!r} must be >= 1 and refresh {refresh!r} in (0, 1)")
        self._hub = hub
        self._rpc = rpc
        self._domain = domain
        self._expires = expires
        self._refresh_after = expires * refresh
        self._probe_interval = probe_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stop_timeout = stop_timeout
        self._clock = clock
        self._rng = rng
        self._task: asyncio.Task[None] | None = None
        self._pending: set[Key] = set()
        self._published: dict[Key, float] = {}
        """Key → clock time of its last successful publish."""
        self._retry_at: dict[Key, float] = {}
        self._failures: dict[Key, int] = {}
        self._instance: Any = None
        self._next_probe = 0.0
        self._bad_ids: set[Key] = set()
        self.publishes = 0
        """Successful publishes (and unpublishes) so far."""
        self.failures = 0
        """Failed publish attempts so far."""
        self.restarts_seen = 0
        """Edge restarts noticed by the ``core.ps`` probe."""
        self.changed = asyncio.Condition()
        """Notified after every round (for tests and diagnostics)."""

    # ------------------------------------------------------------------ public

    def uri(self, key: Key) -> str:
        return presentity_uri(key[0], key[1], self._domain)

    def published(self, key: Key) -> bool:
        """True while the person's current document has been accepted by the edge."""
        return key in self._published and key not in self._pending

    def republish_all(self) -> None:
        """Publish everyone again at the next round (e.g. the caller knows the edge restarted)."""
        self._pending.update(self._hub.keys())
        self._retry_at.clear()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="pidf-publisher")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # Bounded: an RPC stuck in a dead edge must not hold up the switch's shutdown.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(self._stop_timeout):
                await task

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        with self._hub.watch() as watch:
            watch.mark_all()
            while True:
                self._pending |= watch.take()
                await self._probe()
                await self._round()
                async with self.changed:
                    self.changed.notify_all()
                delay = self._next_wakeup() - self._clock()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            self._pending |= await watch.next_batch()

    async def _probe(self) -> None:
        """Notice an edge restart: its main process id changes (RPC ``core.ps``)."""
        now = self._clock()
        if now < self._next_probe:
            return
        self._next_probe = now + self._probe_interval
        try:
            answer = await self._rpc("core.ps")
        except Exception as exc:
            log.debug("presence edge probe failed: %s", exc)
            return
        # [pid, "main process - attendant", pid, "udp receiver ...", ...]
        instance = answer[0] if isinstance(answer, list) and answer else answer
        if self._instance is not None and instance != self._instance:
            self.restarts_seen += 1
            log.info("presence edge restarted (pid %s): publishing everyone again", instance)
            # The new edge holds no documents (switch.edge.database.forget_presence): nothing to
            # refresh or take back, everything to publish.
            self._published.clear()
            self.republish_all()
        self._instance = instance

    async def _round(self) -> None:
        now = self._clock()
        for key, at in self._published.items():
            if now - at >= self._refresh_after:
                self._pending.add(key)
        failures = 0
        for key in sorted(self._pending):
            if self._retry_at.get(key, 0.0) > now:
                continue
            if await self._publish(key):
                self._pending.discard(key)
                self._retry_at.pop(key, None)
                self._failures.pop(key, None)
                continue
            failures += 1
            attempt = self._failures.get(key, 0)
            self._failures[key] = attempt + 1
            self._retry_at[key] = self._clock() + backoff_delay(
                attempt, self._backoff_initial, self._backoff_max, self._rng
            )
            if failures >= MAX_FAILURES_PER_ROUND:
                # The edge is probably down: let everyone else wait for the same backoff.
                until = self._retry_at[key]
                for other in self._pending:
                    self._retry_at[other] = max(self._retry_at.get(other, 0.0), until)
                break

    async def _publish(self, key: Key) -> bool:
        """One publish (or unpublish); False when it failed (logged), True otherwise."""
        tenant, person = key
        record = self._hub.get(key)
        try:
            uri = self.uri(key)
        except PresentityError as exc:
            if key not in self._bad_ids:
                self._bad_ids.add(key)
                log.warning("presence not published over SIP tenant=%s: %s", tenant, exc)
            return True  # nothing to retry: the id will not change
        if record is None:
            if key not in self._published:
                # Never published to this edge: pua would not answer at all (measured).
                return True
            params: tuple[str, ...] = (uri, "0", EVENT, ".", ".", ".", ".", ".")
        else:
            try:
                document = document_for(uri, record).decode("utf-8")
            except PresenceError as exc:
                # The record cannot be written as PIDF; retrying would not change that.
                log.error("presence not published over SIP tenant=%s: %s", tenant, exc)
                return True
            params = (uri, str(self._expires), EVENT, CONTENT_TYPE, ".", ".", ".", ".", document)
        try:
            await self._rpc("pua.publish", *params)
        except Exception as exc:
            self.failures += 1
            if record is None:
                # Nothing to take back (the edge restarted, or it expired): done.
                log.debug("presence unpublish tenant=%s person=%s: %s", tenant, person, exc)
                self._published.pop(key, None)
                return True
            log.warning(
                "presence publish failed tenant=%s person=%s attempt=%d: %s",
                tenant,
                person,
                self._failures.get(key, 0) + 1,
                exc,
            )
            return False
        self.publishes += 1
        if record is None:
            self._published.pop(key, None)
        else:
            self._published[key] = self._clock()
            log.debug(
                "presence published tenant=%s person=%s state=%s", tenant, person, record.state
            )
        return True

    def _next_wakeup(self) -> float:
        times = [self._next_probe]
        times.extend(at + self._refresh_after for at in self._published.values())
        times.extend(self._retry_at[k] for k in self._pending if k in self._retry_at)
        if any(k not in self._retry_at for k in self._pending):
            times.append(self._clock())
        return min(times)
