"""Presence shared between nodes: the last-writer-wins book (pure), and two nodes' hubs and
bridges against one test-owned Mosquitto: a change on node A changes routing on node B
within 1 s, nothing loops, and two changes at once end with both nodes agreeing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest

from presence.errors import PayloadError, TopicError
from presence.hub import PresenceHub
from presence.model import PresenceSource, initial
from presence.mqtt import PresenceBridge
from presence.peers import PeerBook, PeerState, parse_peer_topic
from rules.presence import PresenceState as S
from tests.helpers.mosquitto import MosquittoBroker
from tests.rules.helpers import at, plan, run

T0 = datetime(2027, 5, 24, 8, 0, tzinfo=UTC)
KEY = ("acme", "jan")


def peer(node: str, seconds: float, state: S = S.AWAY) -> PeerState:
    return PeerState(node, T0 + timedelta(seconds=seconds), state, PresenceSource.WEB)


def test_a_later_peer_wins_and_ties_break_by_node_name() -> None:
    book = PeerBook("b")
    assert book.accept(KEY, peer("a", 1))
    book.applied(KEY, initial(T0), peer("a", 1))
    assert not book.accept(KEY, peer("a", 0.5))  # older
    assert not book.accept(KEY, peer("a", 1))  # the same again
    assert book.accept(KEY, peer("c", 1))  # same time, later node name
    assert not book.accept(KEY, peer("b", 9))  # our own echo


def test_what_a_peer_set_is_not_published_back() -> None:
    book = PeerBook("b")
    hub = PresenceHub({"acme": {"jan"}}, clock=lambda: T0)
    record = hub.set("acme", "jan", S.AWAY, source=PresenceSource.WEB)
    book.applied(KEY, record, peer("a", 1))
    assert book.local_change(KEY, record, T0) is None  # no loop
    later = hub.set("acme", "jan", S.DND, source=PresenceSource.PHONE)
    change = book.local_change(KEY, later, T0 + timedelta(seconds=5))
    assert change is not None
    assert (change.node, change.state, change.set_at) == ("b", S.DND, T0 + timedelta(seconds=5))
    assert PeerState.decode(change.encode()) == change
    assert book.local_change(KEY, hub.call_started("acme", "jan"), T0) is None  # calls: local


def test_bad_peer_messages_are_refused() -> None:
    with pytest.raises(PayloadError):
        PeerState.decode(b'{"node": "a"}')
    with pytest.raises(PayloadError, match="zone"):
        PeerState.decode(
            b'{"node":"a","set_at":"2027-05-24T08:00:00","state":"away","source":"web"}'
        )
    with pytest.raises(TopicError):
        parse_peer_topic("rufweiche", "rufweiche/acme/person/jan/presence/set")
    assert parse_peer_topic("rufweiche", "rufweiche/acme/person/jan/presence/peer") == KEY


# ------------------------------------------------------------------ two nodes, one broker

DIRECTORY = {"acme": {"jan", "eva"}}
PLAN = plan(
    """\
    rules:
      - {name: jan away, when: {presence: {jan: away}}, then: voicemail}
      - {name: jan here, then: {ring: [jan]}}
    """
)


async def eventually(predicate: Callable[[], bool], within: float) -> float:
    start = time.monotonic()
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def nodes(mosquitto: MosquittoBroker) -> AsyncIterator[dict[str, PresenceBridge]]:
    async with AsyncExitStack() as stack:
        bridges: dict[str, PresenceBridge] = {}
        for name in ("node-a", "node-b"):
            hub = PresenceHub(DIRECTORY)
            bridge = PresenceBridge(
                hub, mosquitto.host, mosquitto.port, node=name, timeout=2, stop_timeout=2
            )
            bridges[name] = await stack.enter_async_context(bridge)
            await asyncio.wait_for(bridge.connected.wait(), 5)
        yield bridges


@pytest.mark.peer
async def test_a_change_on_node_a_changes_routing_on_node_b_within_a_second(
    nodes: dict[str, PresenceBridge],
) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    monday = at(2027, 5, 24, 10)
    assert run(PLAN, monday, presence=b._hub.snapshot("acme")).rule == "jan here"
    a._hub.set("acme", "jan", S.AWAY, source=PresenceSource.WEB, note="Termin")
    took = await eventually(lambda: b._hub.snapshot("acme").get("jan") == S.AWAY, within=1.0)
    assert run(PLAN, monday, presence=b._hub.snapshot("acme")).rule == "jan away"
    assert b._hub.record("acme", "jan").note == "Termin"
    assert took < 1.0
    # No loop: B applied it once and did not send it back; A applied nothing.
    await asyncio.sleep(0.5)
    assert b.peer_states_applied == 1
    assert a.peer_states_applied == 0
    # And back, from B this time.
    b._hub.set("acme", "jan", S.AVAILABLE, source=PresenceSource.PHONE)
    await eventually(lambda: a._hub.snapshot("acme").get("jan") == S.AVAILABLE, within=1.0)
    assert run(PLAN, monday, presence=a._hub.snapshot("acme")).rule == "jan here"


@pytest.mark.peer
async def test_two_nodes_changing_one_person_at_once_end_up_agreeing(
    nodes: dict[str, PresenceBridge],
) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    for _ in range(5):
        a._hub.set("acme", "eva", S.DND, source=PresenceSource.WEB)
        b._hub.set("acme", "eva", S.AWAY, source=PresenceSource.PHONE)
        await asyncio.sleep(0)
    await eventually(
        lambda: a.settled and b.settled and a._hub.snapshot("acme") == b._hub.snapshot("acme"),
        within=3.0,
    )
    await asyncio.sleep(0.3)  # nothing left in flight changes it again
    assert a._hub.snapshot("acme") == b._hub.snapshot("acme")
    assert a._hub.snapshot("acme")["eva"] in (S.DND, S.AWAY)


@pytest.mark.peer
async def test_a_node_that_starts_later_catches_up_from_the_retained_messages(
    mosquitto: MosquittoBroker,
) -> None:
    first = PresenceHub(DIRECTORY)
    async with PresenceBridge(first, mosquitto.host, mosquitto.port, node="node-a") as a:
        await asyncio.wait_for(a.connected.wait(), 5)
        first.set("acme", "jan", S.DND, source=PresenceSource.WEB)
        await eventually(lambda: a.settled, within=3.0)
    late = PresenceHub(DIRECTORY)
    async with PresenceBridge(late, mosquitto.host, mosquitto.port, node="node-c") as c:
        await eventually(lambda: late.snapshot("acme").get("jan") == S.DND, within=3.0)
        assert c.peer_states_applied == 1
