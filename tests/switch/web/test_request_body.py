"""switch/web/request.py: the one reader of a handler's JSON body and its 400 answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from switch.web.request import json_body, json_object, json_response

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async def any_body(request: web.Request) -> web.Response:
        body = await json_body(request, "thing")
        return body if isinstance(body, web.Response) else json_response({"got": body})

    async def an_object(request: web.Request) -> web.Response:
        body = await json_object(request, "Anruf", not_json="kein JSON", not_object="kein Objekt")
        return body if isinstance(body, web.Response) else json_response({"got": body})

    app = web.Application()
    app.add_routes([web.post("/any", any_body), web.post("/object", an_object)])
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "data", "status", "answer"),
    [
        ("/any", b"[1, 2]", 200, {"got": [1, 2]}),
        ("/any", b"{not json", 400, {"error": "thing: the body is not JSON"}),
        ("/any", b'"\xff"', 400, {"error": "thing: the body is not JSON"}),
        ("/object", b'{"a": 1}', 200, {"got": {"a": 1}}),
        ("/object", b"{not json", 400, {"error": "Anruf: kein JSON"}),
        ("/object", b"[1, 2]", 400, {"error": "Anruf: kein Objekt"}),
    ],
)
async def test_the_body_or_the_400_that_says_why_not(
    client: Client, path: str, data: bytes, status: int, answer: dict[str, Any]
) -> None:
    response = await client.post(path, data=data, headers={"Content-Type": "application/json"})
    assert response.status == status
    assert await response.json() == answer
