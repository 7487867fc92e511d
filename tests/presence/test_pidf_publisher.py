"""PidfPublisher against an in-memory edge (the rpc seam): coalescing, retry, refresh,
restart, unpublish. The real edge is in test_sip_presence.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from presence import pidf
from presence.errors import PidfError
from presence.hub import PresenceHub
from presence.sip import MAX_FAILURES_PER_ROUND, PidfPublisher, PresentityError, presentity_uri
from rules.presence import PresenceState as S

DOMAIN = "office"
JAN = "sip:t.jan@office"


class FakeEdge:
    """Answers ``core.ps`` and ``pua.publish`` like Kamailio's JSON-RPC does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.accepted: list[tuple[str, ...]] = []
        self.docs: dict[str, str] = {}
        self.fail = 0
        self.pid = 4711
        self.gate: asyncio.Event | None = None

    async def __call__(self, method: str, *params: str) -> Any:
        self.calls.append((method, params))
        if method == "core.ps":
            return [self.pid, "main process - attendant", self.pid + 2, "udp receiver child=0"]
        assert method == "pua.publish"
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionRefusedError("edge down")
        uri, expires = params[0], params[1]
        if expires == "0":
            self.docs.pop(uri, None)
        else:
            assert params[2:8] == ("presence", "application/pidf+xml", ".", ".", ".", ".")
            self.docs[uri] = params[8]
        self.accepted.append(params)
        return {"SIP-ETag": "a.1", "Expires": int(expires)}

    def states(self, uri: str) -> list[S]:
        """Every state the edge accepted for ``uri``, in order."""
        return [pidf.parse(p[8]).state for p in self.accepted if p[0] == uri and p[1] != "0"]

    def publishes(self) -> int:
        return sum(1 for m, _ in self.calls if m == "pua.publish")


async def until(check: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def make_hub(*people: str) -> PresenceHub:
    return PresenceHub({"t": set(people or ("jan",))})


def publisher(hub: PresenceHub, edge: FakeEdge, **kwargs: Any) -> PidfPublisher:
    values: dict[str, Any] = {"domain": DOMAIN, "backoff_initial": 0.01, "rng": lambda: 1.0}
    values.update(kwargs)
    return PidfPublisher(hub, edge, **values)


def test_presentity_uri() -> None:
    assert presentity_uri("tischlerei", "jan", "office") == "sip:tischlerei.jan@office"
    for tenant, person in (("a.b", "jan"), ("t", "j an"), ("t", "jan@x"), ("", "jan")):
        with pytest.raises(PresentityError, match="cannot be a SIP presentity"):
            presentity_uri(tenant, person, "office")


async def test_everyone_is_published_at_start() -> None:
    hub, edge = make_hub("jan", "anna"), FakeEdge()
    async with publisher(hub, edge) as pub:
        await until(lambda: len(edge.docs) == 2)
        assert pub.published(("t", "jan"))
    doc = pidf.parse(edge.docs[JAN])
    assert (doc.entity, doc.state, doc.basic) == (JAN, S.AVAILABLE, "open")
    assert pidf.parse(edge.docs["sip:t.anna@office"]).entity == "sip:t.anna@office"
    assert edge.states(JAN) == [S.AVAILABLE]


async def test_changes_coalesce_while_a_publish_is_under_way() -> None:
    hub, edge = make_hub(), FakeEdge()
    edge.gate = asyncio.Event()
    async with publisher(hub, edge):
        await until(lambda: edge.publishes() == 1)  # jan (available) is stuck in the edge
        hub.set("t", "jan", S.AWAY, source="web")
        hub.set("t", "jan", S.DND, source="web", note="meeting")
        hub.call_started("t", "jan")
        edge.gate.set()
        await until(lambda: len(edge.states(JAN)) == 2)
        await asyncio.sleep(0.05)
    # The intermediate away and dnd were skipped: the edge got the last state only.
    assert edge.states(JAN) == [S.AVAILABLE, S.BUSY]
    doc = pidf.parse(edge.docs[JAN])
    assert doc.activities == ("on-the-phone",)
    assert doc.note == "meeting"


async def test_every_change_is_published_in_order() -> None:
    hub, edge = make_hub(), FakeEdge()
    async with publisher(hub, edge):
        await until(lambda: len(edge.states(JAN)) == 1)
        for state in (S.AWAY, S.DND, S.OFFLINE, S.AVAILABLE):
            hub.set("t", "jan", state, source="mqtt")
            await until(lambda state=state: edge.states(JAN)[-1:] == [state])  # type: ignore[misc]
    assert edge.states(JAN) == [S.AVAILABLE, S.AWAY, S.DND, S.OFFLINE, S.AVAILABLE]
    assert pidf.parse(edge.docs[JAN]).basic == "open"


async def test_a_failed_publish_is_retried_with_backoff() -> None:
    hub, edge = make_hub(), FakeEdge()
    edge.fail = 2
    started = time.monotonic()
    async with publisher(hub, edge, backoff_initial=0.05) as pub:
        await until(lambda: JAN in edge.docs)
        assert (pub.failures, pub.publishes) == (2, 1)
    # Two backoffs, 0.05 s then 0.1 s (rng 1.0 = no jitter reduction).
    assert time.monotonic() - started >= 0.15
    assert edge.states(JAN) == [S.AVAILABLE]


async def test_a_dead_edge_is_not_hammered_person_by_person() -> None:
    hub, edge = make_hub(*(f"p{i}" for i in range(10))), FakeEdge()
    edge.fail = 1000
    async with publisher(hub, edge, backoff_initial=30.0) as pub:
        await until(lambda: pub.failures >= MAX_FAILURES_PER_ROUND)
        await asyncio.sleep(0.1)
        assert edge.publishes() == MAX_FAILURES_PER_ROUND
        # The edge comes back: a restart or an explicit call publishes everyone.
        edge.fail = 0
        pub.republish_all()
        hub.set("t", "p0", S.AWAY, source="web")  # wakes the loop
        await until(lambda: len(edge.docs) == 10)


async def test_documents_are_refreshed_before_they_expire() -> None:
    hub, edge = make_hub(), FakeEdge()
    async with publisher(hub, edge, expires=1, refresh=0.2):
        await until(lambda: len(edge.states(JAN)) >= 3, seconds=3)
    expires = {p[1] for m, p in edge.calls if m == "pua.publish"}
    assert expires == {"1"}
    times = edge.states(JAN)
    assert set(times) == {S.AVAILABLE}


async def test_an_edge_restart_republishes_everyone() -> None:
    hub, edge = make_hub("jan", "anna"), FakeEdge()
    async with publisher(hub, edge, probe_interval=0.02) as pub:
        await until(lambda: len(edge.docs) == 2)
        await until(lambda: sum(m == "core.ps" for m, _ in edge.calls) >= 2)
        assert pub.restarts_seen == 0
        edge.docs.clear()  # a new Kamailio knows nothing
        edge.pid = 4800
        await until(lambda: len(edge.docs) == 2)
        assert pub.restarts_seen == 1
    assert edge.states(JAN) == [S.AVAILABLE, S.AVAILABLE]


async def test_a_person_who_left_is_unpublished() -> None:
    hub, edge = make_hub("jan", "anna"), FakeEdge()
    async with publisher(hub, edge):
        await until(lambda: len(edge.docs) == 2)
        hub.replace_directory({"t": {"anna"}})
        await until(lambda: JAN not in edge.docs)
    unpublish = [p for m, p in edge.calls if m == "pua.publish" and p[1] == "0"]
    assert unpublish == [(JAN, "0", "presence", ".", ".", ".", ".", ".")]


async def test_ids_that_are_no_sip_user_are_skipped() -> None:
    hub, edge = PresenceHub({"t": {"jan", "a.b"}}), FakeEdge()
    async with publisher(hub, edge) as pub:
        await until(lambda: JAN in edge.docs)
        await asyncio.sleep(0.05)
        assert not pub.published(("t", "a.b"))
    assert list(edge.docs) == [JAN]


async def test_stop_is_bounded_when_the_edge_hangs() -> None:
    hub, edge = make_hub(), FakeEdge()
    edge.gate = asyncio.Event()  # never set: the publish never returns
    started = time.monotonic()
    async with publisher(hub, edge, stop_timeout=0.2):
        await until(lambda: edge.publishes() == 1)
    assert time.monotonic() - started < 2


def test_bad_timing_settings() -> None:
    with pytest.raises(ValueError, match="refresh"):
        PidfPublisher(make_hub(), FakeEdge(), domain=DOMAIN, refresh=1.0)


async def test_a_document_that_cannot_be_built_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import presence.sip

    def build(entity: str, record: Any) -> bytes:
        if entity == JAN:
            raise PidfError(f"note of {entity!r} holds characters XML 1.0 cannot carry")
        return pidf.document_for(entity, record)

    monkeypatch.setattr(presence.sip, "document_for", build)
    hub, edge = make_hub("jan", "anna"), FakeEdge()
    async with publisher(hub, edge) as pub:
        await until(lambda: "sip:t.anna@office" in edge.docs)
        hub.set("t", "anna", S.AWAY, source="web")
        await until(lambda: edge.states("sip:t.anna@office") == [S.AVAILABLE, S.AWAY])
        assert pub.failures == 0
    assert JAN not in edge.docs
