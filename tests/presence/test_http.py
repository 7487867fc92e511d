"""HTTP API on a real socket (aiohttp TestServer + TestClient)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from presence.http import presence_routes
from presence.hub import PresenceHub
from rules.presence import PresenceState as S

DIRECTORY = {"acme": {"anna", "bert"}, "beta": {"carl"}}
ANNA = "/api/v1/tenants/acme/people/anna/presence"


@pytest.fixture
def hub() -> PresenceHub:
    return PresenceHub(DIRECTORY)


@pytest.fixture
async def client(hub: PresenceHub) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app.add_routes(presence_routes(hub))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def test_put_then_get(
    client: TestClient[web.Request, web.Application], hub: PresenceHub
) -> None:
    until = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    resp = await client.put(
        ANNA, json={"state": "away", "note": "on site", "until": until.isoformat()}
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["state"], body["source"], body["note"], body["then"]) == (
        "away",
        "web",
        "on site",
        "available",
    )
    assert datetime.fromisoformat(body["until"]) == until
    assert hub.snapshot("acme")["anna"] == S.AWAY

    resp = await client.get(ANNA)
    assert resp.status == 200
    assert (await resp.json())["state"] == "away"

    hub.call_started("acme", "anna")
    everything = await (await client.get("/api/v1/presence")).json()
    assert set(everything["tenants"]) == {"acme", "beta"}
    assert everything["tenants"]["acme"]["anna"]["state"] == "busy"
    assert everything["tenants"]["acme"]["anna"]["set_state"] == "away"
    assert everything["tenants"]["beta"]["carl"]["state"] == "available"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/tenants/acme/people/zoe/presence", "person 'zoe' is not known in tenant 'acme'"),
        ("/api/v1/tenants/nope/people/anna/presence", "tenant 'nope' is not known"),
    ],
)
async def test_unknown_is_404(
    client: TestClient[web.Request, web.Application], path: str, message: str
) -> None:
    for resp in (await client.get(path), await client.put(path, json={"state": "away"})):
        assert resp.status == 404
        assert resp.content_type == "application/json"
        assert (await resp.json()) == {"error": message}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "body is not JSON"),
        (b"[1]", 422, "must be a JSON object"),
        (b'{"state": "sleeping"}', 422, "state 'sleeping' is not one of 'available', 'away'"),
        (b'{"state": "away", "until": "2001-01-01T00:00:00+00:00"}', 422, "is not in the future"),
        (b'{"state": "away", "until": "14:00"}', 422, "until '14:00'"),
        (b'{"stat": "away"}', 422, "state is missing"),
        (b'{"state": "away", "note": "' + b"x" * 5000 + b'"}', 413, "over 2048"),
    ],
)
async def test_bad_bodies_get_a_clear_error(
    client: TestClient[web.Request, web.Application],
    hub: PresenceHub,
    body: bytes,
    status: int,
    message: str,
) -> None:
    resp = await client.put(ANNA, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status
    error = (await resp.json())["error"]
    assert message in error
    assert "Traceback" not in error
    assert hub.snapshot("acme")["anna"] == S.AVAILABLE  # nothing changed
