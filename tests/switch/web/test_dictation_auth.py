"""Dictations behind the login: listed per tenant, marked done only within one's tenant."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switch.supervisor.voicemail import VoicemailBox
from switch.web.guard import CSRF_HEADER
from tests.helpers.web import PASSWORD, Site, auth_site, client, csrf_of, login


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with auth_site(tmp_path) as s:
        async with VoicemailBox(tmp_path / "records.db") as box:
            for n, tenant in enumerate(("mueller", "schmidt")):
                wav = tmp_path / "dictation" / tenant / f"d{n}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                wav.write_bytes(b"RIFF-dictation")
                await box.add(
                    {
                        "kind": "dictation",
                        "person": "otto",
                        "tenant": tenant,
                        "call_id": f"d-{n}",
                        "caller": "otto",
                        "called": "*50",
                        "path": str(wav),
                        "seconds": 4.0,
                        "started_wall": 1_700_000_000.0 + n,
                    },
                    "full",
                )
        yield s


async def call(url: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers) as r,
    ):
        return r.status, json.loads(await r.text())


async def test_dictations_are_recordings_of_one_tenant(site: Site) -> None:
    otto, _ = site.token("otto")
    anna, _ = site.token("anna")
    status, body = await call(site.url + "/api/v1/dictations", token=otto)
    assert status == 200
    (mine,) = body["dictations"]
    assert (mine["tenant"], mine["person"], mine["done_at"]) == ("mueller", "otto", None)
    assert mine["url"] == "/files/dictation/mueller/d0.wav"
    sven, _ = site.token("sven")
    (theirs,) = (await call(site.url + "/api/v1/dictations", token=sven))[1]["dictations"]
    # Another tenant's dictation, or no right to recordings: it does not exist for you.
    done = site.url + "/api/v1/dictations/{}/done"
    assert (await call(done.format(theirs["id"]), "POST", otto))[0] == 404
    assert (await call(done.format(mine["id"]), "POST", anna))[0] == 404
    assert (await call(done.format(999), "POST", otto))[0] == 404
    assert (await call(done.format(mine["id"]), "POST"))[0] == 401
    status, marked = await call(done.format(mine["id"]), "POST", otto)
    assert status == 200
    assert marked["done_at"]
    (after,) = (await call(site.url + "/api/v1/dictations", token=otto))[1]["dictations"]
    assert after["done_at"] == marked["done_at"]
    (still,) = (await call(site.url + "/api/v1/dictations", token=sven))[1]["dictations"]
    assert still["done_at"] is None


async def test_a_session_needs_the_csrf_header(site: Site) -> None:
    async with client() as session:
        status, _ = await login(session, site.url, "sven", PASSWORD, site.totp("sven"))
        assert status == 200
        async with session.get(site.url + "/api/v1/dictations") as r:
            (row,) = (await r.json())["dictations"]
        url = f"{site.url}/api/v1/dictations/{row['id']}/done"
        async with session.post(url) as r:
            assert r.status == 403
        async with session.post(url, headers={CSRF_HEADER: csrf_of(session)}) as r:
            assert r.status == 200
