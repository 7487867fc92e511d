"""The MQTT bridge: publishes presence, takes commands, survives a broker that comes and goes.

Theory of operation
-------------------
:class:`PresenceBridge` is an ``async with`` object; entering it starts one task that
loops *connect → session → back off → connect*. The hub never waits for the broker: it
keeps working on its own state, and the bridge catches up.

A session (one broker connection):

1. connects with a last will ``offline`` (retained, QoS 1) on the status topic, then
   publishes ``online`` there (retained);
2. subscribes to the command filter ``<prefix>/+/person/+/presence/set`` (QoS 1);
3. marks every person as changed, so that all retained states are published again —
   a change made while the broker was away is not lost, and a broker that lost its
   retained store (``persistence false``) is refilled;
4. runs two loops until the connection fails or the bridge stops: the *publisher*
   (coalesced hub changes → retained state messages, plus Home Assistant discovery
   configs the first time a person is seen in the session; a person who left the
   directory gets empty retained messages, which delete them — MQTT 3.1.1 §3.3.1.3),
   and the *command reader* (``…/presence/set`` → :meth:`PresenceHub.set`; bad topics,
   payloads and unknown people are logged and ignored).

After a lost connection the bridge waits ``backoff_initial * 2**n`` seconds, capped at
``backoff_max`` and jittered to 50-100 % (so many switches restarted with one broker do
not reconnect in step), and starts again. A clean stop publishes ``offline`` and sends
DISCONNECT (so the broker drops the will); it is bounded by ``stop_timeout``, after which
the task is cancelled — stopping cannot hang on a dead broker.

Retained messages on the command topic are ignored: the broker would replay them on every
resubscribe and undo changes made since.

Several nodes (``node`` given): each also publishes what a person set on
``…/presence/peer`` and applies the other nodes' messages, last writer wins, without
loops — see :mod:`presence.peers`.

Other parts of the switch publish their events through the same session
(:meth:`PresenceBridge.publish`: voicemail and dictation notices), so the switch holds one
MQTT connection, with one client id and one set of credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Self

import aiomqtt

from presence.backoff import backoff_delay
from presence.errors import PresenceError, TopicError
from presence.hub import PresenceHub, Watch, utc_now
from presence.model import Key, PresenceSource
from presence.peers import PEER_SUFFIX, PeerBook, PeerState, parse_peer_topic
from presence.topics import (
    OFFLINE,
    ONLINE,
    Topics,
    decode_command,
    decode_override,
    discovery_config,
    encode_state,
    is_override_topic,
)

log = logging.getLogger(__name__)


class _Stopping(Exception):
    """Raised inside a session when :meth:`PresenceBridge.stop` was asked for."""


class PresenceBridge:
    """Presence hub ↔ MQTT broker. ``async with PresenceBridge(hub, host, port): ...``"""

    def __init__(
        self,
        hub: PresenceHub,
        host: str,
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        topics: Topics | None = None,
        discovery: bool = True,
        keepalive: int = 30,
        timeout: float = 5.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        stop_timeout: float = 5.0,
        rng: Callable[[], float] = random.random,
        node: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._hub = hub
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._client_id = client_id or f"rufweiche-presence-{secrets.token_hex(4)}"
        self.topics = topics or Topics()
        self._discovery = discovery
        self._keepalive = keepalive
        self._timeout = timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stop_timeout = stop_timeout
        self._rng = rng
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: Watch | None = None
        self._announced: set[Key] = set()
        self._bad_ids: set[Key] = set()
        self.client: aiomqtt.Client | None = None
        """The live client while a session runs (for diagnostics and tests)."""
        self.connected = asyncio.Event()
        self.connections = 0
        """Sessions started so far (1 after the first connect, 2 after one reconnect, …)."""
        self.commands_applied = 0
        self.commands_ignored = 0
        self._publishing = False
        # Presence shared with the other nodes (presence/peers.py) when this node has a name.
        self.peers = PeerBook(node) if node else None
        self._clock = clock
        self.peer_states_applied = 0
        # More command topics for someone else (the switch's queue members, issue 19):
        # topic filter -> handler(topic, payload), called for non-retained messages.
        self.extra_commands: dict[str, Callable[[str, bytes], None]] = {}

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def settled(self) -> bool:
        """Connected, and every change of the hub so far has been acknowledged by the broker."""
        return (
            self.connected.is_set()
            and not self._publishing
            and self._watch is not None
            and not self._watch.pending
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._stopping.clear()
        self._watch = self._hub.watch()
        self._task = asyncio.create_task(self._run(), name="presence-mqtt")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Publish ``offline``, disconnect cleanly; cancel if that takes over ``stop_timeout``."""
        task, self._task = self._task, None
        self._stopping.set()
        if task is not None:
            try:
                async with asyncio.timeout(self._stop_timeout):
                    await asyncio.shield(task)
            except TimeoutError:
                log.warning(
                    "MQTT bridge did not stop within %.1f s, cancelling", self._stop_timeout
                )
                task.cancel()
                # aiomqtt still tries a DISCONNECT on the way out, bounded by its own timeout;
                # do not wait for more than that either.
                done, _ = await asyncio.wait({task}, timeout=self._timeout + 1)
                if not done:
                    log.error("MQTT bridge task still running after cancel; abandoned")
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            started = self.connections
            try:
                await self._session()
            except* _Stopping:
                pass
            except* aiomqtt.MqttError as group:
                log.warning(
                    "MQTT broker %s:%d: %s",
                    self._host,
                    self._port,
                    _first_message(group.exceptions),
                )
            except* Exception:
                # Never fatal for the switch; a bug here shows in the log and we try again.
                log.exception("MQTT bridge session failed")
            finally:
                self.client = None
                self.connected.clear()
            if self._stopping.is_set():
                break
            if self.connections > started:
                attempt = 0
            delay = backoff_delay(attempt, self._backoff_initial, self._backoff_max, self._rng)
            attempt += 1
            log.info("MQTT reconnect to %s:%d in %.2f s", self._host, self._port, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _session(self) -> None:
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._username,
            password=self._password,
            identifier=self._client_id,
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            keepalive=self._keepalive,
            timeout=self._timeout,
        )
        async with client:
            self.client = client
            await client.publish(self.topics.status, ONLINE, qos=1, retain=True)
            await client.subscribe(self.topics.command_filter, qos=1)
            await client.subscribe(self.topics.override_filter, qos=1)  # issue 18: day/night
            if self.peers is not None:
                await client.subscribe(self.peer_filter, qos=1)
            for extra in self.extra_commands:
                await client.subscribe(extra, qos=1)
            self._announced.clear()
            assert self._watch is not None
            self._watch.mark_all()
            self.connections += 1
            self.connected.set()
            log.info("MQTT connected to %s:%d as %s", self._host, self._port, self._client_id)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._publisher(client, self._watch))
                    tg.create_task(self._commands(client))
                    tg.create_task(self._wait_stopping())
            except* _Stopping:
                self.connected.clear()
                await client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                raise _Stopping from None
            # leaving ``async with client`` sends DISCONNECT, so the broker drops the will

    async def _wait_stopping(self) -> None:
        await self._stopping.wait()
        raise _Stopping

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish one message of someone else's (a voicemail event) on the live session.

        Waits for a session, so that an event during a reconnect still goes out: bound the
        wait with ``asyncio.timeout``. :class:`aiomqtt.MqttError` when the publish failed;
        the caller logs and drops, the bridge itself carries on.
        """
        await self.connected.wait()
        client = self.client
        if client is None:  # the session ended between the wake-up and now
            raise aiomqtt.MqttError("MQTT session ended")
        await client.publish(topic, payload, qos=qos, retain=retain)

    async def _publisher(self, client: aiomqtt.Client, watch: Watch) -> None:
        while True:
            batch = await watch.next_batch()
            self._publishing = True
            try:
                # One at a time: measured against a local mosquitto, concurrent publishes were
                # slower (0.5 ms/message in sequence, 1-3 ms with 10-50 in flight) and make
                # aiomqtt warn about pending calls.
                for key in sorted(batch):
                    await self._publish_person(client, key)
            except BaseException:
                watch.add(batch)  # not lost: the next session publishes them (removals too)
                raise
            finally:
                self._publishing = False

    async def _publish_person(self, client: aiomqtt.Client, key: Key) -> None:
        tenant, person = key
        try:
            topic = self.topics.presence(tenant, person)
        except TopicError as exc:
            if key not in self._bad_ids:
                self._bad_ids.add(key)
                log.warning("presence not published to MQTT tenant=%s: %s", tenant, exc)
            return
        record = self._hub.get(key)
        discovery_topic = self.topics.discovery(tenant, person)
        if record is None:
            # An empty retained message deletes the retained state (MQTT 3.1.1 §3.3.1.3) and
            # an empty discovery config removes the Home Assistant entity.
            await client.publish(topic, b"", qos=1, retain=True)
            if self._discovery:
                await client.publish(discovery_topic, b"", qos=1, retain=True)
            self._announced.discard(key)
            return
        if self._discovery and key not in self._announced:
            config = discovery_config(self.topics, tenant, person)
            await client.publish(discovery_topic, config, qos=1, retain=True)
            self._announced.add(key)
        await client.publish(topic, encode_state(tenant, person, record), qos=1, retain=True)
        if self.peers is not None:
            change = self.peers.local_change(key, record, self._clock())
            if change is not None:
                await client.publish(topic + PEER_SUFFIX, change.encode(), qos=1, retain=True)

    # ------------------------------------------------------------------ commands

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                raw = bytes(payload)
            elif payload is None:
                raw = b""
            else:
                raw = str(payload).encode()
            if self.peers is not None and str(message.topic).endswith(PEER_SUFFIX):
                self.handle_peer_state(str(message.topic), raw)
                continue
            handler = next(
                (h for f, h in self.extra_commands.items() if message.topic.matches(f)), None
            )
            if handler is not None:
                if not message.retain:  # a retained command would replay on reconnect
                    handler(str(message.topic), raw)
                continue
            self.handle_command(str(message.topic), raw, retained=message.retain)

    def handle_command(self, topic: str, payload: bytes, *, retained: bool = False) -> bool:
        """Apply one command message; ``False`` (logged) when it was ignored."""
        if retained:
            log.warning("MQTT retained command on %r ignored (it would replay on reconnect)", topic)
            self.commands_ignored += 1
            return False
        try:
            tenant, person = self.topics.parse_command(topic)
            decode = decode_override if is_override_topic(topic) else decode_command
            self._hub.apply(tenant, person, decode(payload), source=PresenceSource.MQTT)
        except PresenceError as exc:
            log.warning("MQTT command on %r ignored: %s", topic, exc)
            self.commands_ignored += 1
            return False
        self.commands_applied += 1
        return True

    # ------------------------------------------------------------------ other nodes

    @property
    def peer_filter(self) -> str:
        return f"{self.topics.prefix}/+/person/+/presence{PEER_SUFFIX}"

    def handle_peer_state(self, topic: str, payload: bytes) -> bool:
        """Apply another node's presence message when it is later than what we know (LWW);
        False when it was ours, older, or unusable (presence/peers.py)."""
        book = self.peers
        if book is None or not payload:
            return False
        try:
            key = parse_peer_topic(self.topics.prefix, topic)
            peer = PeerState.decode(payload)
            if not book.accept(key, peer):
                return False
            record = self._hub.set(
                *key, peer.state, source=peer.source, note=peer.note, until=peer.until
            )
        except PresenceError as exc:
            log.info("peer presence on %r not applied: %s", topic, exc)
            return False
        book.applied(key, record, peer)
        self.peer_states_applied += 1
        return True


def _first_message(exceptions: Iterable[BaseException]) -> str:
    for exc in exceptions:
        return str(exc) or type(exc).__name__
    return "connection lost"
