"""Voicemail in the supervisor: keep the record, notify over MQTT, list and serve the files.

Theory of operation
-------------------
A worker records a message (switch/worker/media.py) and sends a ``voicemail`` control
message. :class:`VoicemailBox` (one per supervisor, an ``async with`` object) then

1. files it in the calls database (:class:`switch.records.voicemails.VoicemailStore`),
   with the caller's number as the plan's ``store_caller`` allows (full, masked, none —
   the same policy as the call records);
2. publishes ``rufweiche/v1/<tenant>/voicemail`` (:meth:`presence.topics.Topics.event`;
   QoS 1, not retained: it is an event, not a state) with
   ``{"call_id", "path", "caller", "duration", "time"}``, through the supervisor's one
   MQTT bridge (:meth:`presence.mqtt.PresenceBridge.publish`). A broker that is down
   never delays a call or loses the record, nor the notice (issue 14): notices wait in
   a bounded outbox (:class:`Outbox`, ``outbox_max``, oldest dropped beyond it, logged)
   that one sender task empties in order, retrying with backoff until the broker is
   back. The outbox is also kept in ``<data_dir>/voicemail-notices.jsonl`` while it is
   not empty (rewritten on every change: notices are rare), so that notices survive a
   restart of the switch. When the box closes, the sender gets up to ``publish_timeout``
   to empty it; what is left stays in the file for the next start.

The HTTP side (:func:`voicemail_routes`): ``GET /api/v1/voicemails[?tenant=]`` lists
the newest messages, and ``GET /files/voicemail/<tenant>/<file>.wav`` serves one
(names are checked: no path leaves ``<data_dir>/voicemail``).

The dictation box (issue 7) reuses all of it: a report with ``"kind": "dictation"``
(and the ``person`` who dictated) lands in the same table, is announced on
``rufweiche/v1/<tenant>/dictation`` with ``person`` added, and is listed by
``GET /api/v1/dictations`` (rows with ``done_at``), served from
``/files/dictation/<tenant>/<file>.wav`` and marked typed up by
``POST /api/v1/dictations/{id}/done``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, Self

import aiomqtt

from presence.errors import PresenceError
from presence.topics import Topics
from switch.records.rows import CallerPolicy, iso_utc
from switch.records.voicemails import Voicemail, VoicemailStore

log = logging.getLogger("switch.supervisor.voicemail")

PUBLISH_TIMEOUT_S = 5.0
OUTBOX_MAX = 1000
OUTBOX_FILE = "voicemail-notices.jsonl"
RETRY_MAX_S = 30.0


class Publisher(Protocol):
    """What the box needs of the MQTT bridge (:class:`presence.mqtt.PresenceBridge`)."""

    topics: Topics

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = ..., retain: bool = ...
    ) -> None: ...


def payload(mail: Voicemail) -> bytes:
    """The JSON body of the MQTT notice of ``mail``."""
    body: dict[str, Any] = {
        "call_id": mail.call_id,
        "path": mail.path,
        "caller": mail.caller,
        "duration": round(mail.seconds, 1),
        "time": iso_utc(mail.started_wall),
    }
    if mail.kind == "dictation":
        body["person"] = mail.person
    return json.dumps(body, ensure_ascii=False).encode()


class Outbox:
    """Notices not yet accepted by the broker: bounded, in order, mirrored to a file."""

    def __init__(self, path: Path | None, maximum: int = OUTBOX_MAX) -> None:
        self.path = path
        self.maximum = max(1, maximum)
        self.items: deque[tuple[str, bytes]] = deque()
        self.dropped = 0
        self.ready = asyncio.Event()

    def load(self) -> None:
        """The notices a previous run could not send."""
        if self.path is None or not self.path.exists():
            return
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            log.error("voicemail notices %s not read: %s", self.path, exc)
            return
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                self.items.append((str(entry["topic"]), str(entry["payload"]).encode()))
        if self.items:
            log.info("%d voicemail notice(s) of an earlier run to send", len(self.items))
            self.ready.set()

    def put(self, topic: str, body: bytes) -> None:
        self.items.append((topic, body))
        if len(self.items) > self.maximum:
            self.items.popleft()
            self.dropped += 1
            log.error("voicemail notice outbox full (%d): the oldest notice dropped", self.maximum)
        self.ready.set()
        self.save()

    def done(self) -> None:
        """The first notice was sent."""
        self.items.popleft()
        if not self.items:
            self.ready.clear()
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        try:
            if not self.items:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                return
            tmp = self.path.with_name(self.path.name + ".tmp")
            lines = (
                json.dumps({"topic": t, "payload": b.decode()}, ensure_ascii=False) + "\n"
                for t, b in self.items
            )
            tmp.write_text("".join(lines), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk: the notices are still in memory
            log.warning("voicemail notices not saved to %s: %s", self.path, exc)


class VoicemailBox:
    """Stores voicemail records and sends their notifications (see the module docstring)."""

    def __init__(
        self,
        db_path: Path,
        mqtt: Publisher | None = None,
        *,
        publish_timeout: float = PUBLISH_TIMEOUT_S,
        outbox_max: int = OUTBOX_MAX,
        retry_initial: float = 0.5,
    ) -> None:
        self.store = VoicemailStore(db_path)
        self.mqtt = mqtt
        self.publish_timeout = publish_timeout
        self.retry_initial = retry_initial
        self.outbox = Outbox(db_path.parent / OUTBOX_FILE if mqtt else None, outbox_max)
        self.sent = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Issue 18: who else hears of a filed recording (the owner's e-mail notices).
        self.listeners: list[Callable[[Voicemail], None]] = []

    async def __aenter__(self) -> Self:
        await self.store.__aenter__()
        if self.mqtt is not None:
            self.outbox.load()
            task = asyncio.get_running_loop().create_task(self._sender(self.mqtt))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.outbox.items:  # let the sender empty the outbox, but never hang the stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.publish_timeout):
                    while self.outbox.items:  # noqa: ASYNC110 (the sender empties it)
                        await asyncio.sleep(0.05)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.outbox.save()  # what is left waits for the next start
        await self.store.__aexit__(*exc)

    async def add(self, message: dict[str, Any], policy: CallerPolicy | str) -> Voicemail:
        """Store one worker report and start its MQTT notification."""
        mail = Voicemail.from_message(message, policy)
        await self.store.add(mail, policy)
        log.info("%s tenant=%s call %s: %.1f s", mail.kind, mail.tenant, mail.call_id, mail.seconds)
        for listener in self.listeners:
            listener(mail)
        if self.mqtt is not None:
            try:
                topic = self.mqtt.topics.event(mail.tenant, mail.kind)
            except PresenceError as exc:
                log.warning("%s tenant=%s not notified over MQTT: %s", mail.kind, mail.tenant, exc)
            else:
                self.outbox.put(topic, payload(mail))
        return mail

    async def list(
        self, tenant: str | None = None, limit: int = 100, kind: str = "voicemail"
    ) -> list[dict[str, Any]]:
        return await self.store.list(tenant, limit, kind)

    async def tenant_of(self, row_id: int, kind: str) -> str | None:
        return await self.store.tenant_of(row_id, kind)

    async def mark_done(self, row_id: int, when: float) -> dict[str, Any] | None:
        return await self.store.mark_done(row_id, when)

    async def _sender(self, mqtt: Publisher) -> None:
        """Send the outbox in order; on failure wait (backoff) and try the same one again."""
        delay = self.retry_initial
        failing = False
        while True:
            await self.outbox.ready.wait()
            topic, body = self.outbox.items[0]
            try:
                async with asyncio.timeout(self.publish_timeout):
                    await mqtt.publish(topic, body, qos=1, retain=False)
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                if not failing:  # once per outage, not per retry
                    log.warning(
                        "voicemail notices wait for the MQTT broker (%d queued): %s",
                        len(self.outbox.items),
                        str(exc) or type(exc).__name__,
                    )
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self.outbox.done()
            self.sent += 1
            if failing:
                log.info("MQTT broker back: voicemail notices are going out again")
            failing = False
            delay = self.retry_initial


__all__ = ["Outbox", "Publisher", "VoicemailBox", "payload"]
