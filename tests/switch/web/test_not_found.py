"""Unknown files under /files and /static, and unknown API paths, answer a JSON 404
like the rest of the API (issue 14 item 10: they were aiohttp's plain-text pages)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from switch.metrics import Metrics
from switch.supervisor.voicemail import VoicemailBox
from switch.web.app import HealthReport, make_app, serve
from switch.web.voicemail_api import voicemail_routes
from tests.helpers.web import auth_site

MISSING = (
    "/static/no-such-file.js",
    "/static",
    "/files/voicemail/mueller/missing.wav",
    "/files/voicemail/Mueller/x.wav",  # a name the handler refuses
    "/files/voicemail/mueller",  # no route at all
    "/files/nothing",
    "/api/v1/no-such-api",
)


async def _assert_json_404(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> aiohttp.ClientResponse:
    async with http.get(url, headers=headers or {}, allow_redirects=False) as response:
        assert response.status == 404, url
        assert response.content_type == "application/json", url
        assert await response.json() == {"error": "not found"}, url
        return response


async def test_open_mode_answers_json_404(tmp_path: Path) -> None:
    async with VoicemailBox(tmp_path / "calls.sqlite3") as box:
        app = make_app(
            None,
            Metrics(),
            lambda: HealthReport(1, 1, True),
            extra_routes=voicemail_routes(box, tmp_path),
        )
        async with serve(app) as url, aiohttp.ClientSession() as http:
            for path in MISSING:
                await _assert_json_404(http, url + path)
            async with http.get(url + "/static/dashboard.js") as response:
                assert response.status == 200  # the files that exist are still served


async def test_behind_login_json_404_keeps_the_hardening_headers(tmp_path: Path) -> None:
    async with auth_site(tmp_path) as site, aiohttp.ClientSession() as http:
        token, _ = site.token("otto")
        bearer = {"Authorization": f"Bearer {token}"}
        for path in MISSING:
            response = await _assert_json_404(http, site.url + path, bearer)
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
        # Anonymous: a public prefix still says 404 in JSON; a data prefix still says 401.
        await _assert_json_404(http, site.url + "/static/no-such-file.js")
        async with http.get(site.url + "/files/voicemail/mueller/missing.wav") as response:
            assert response.status == 401
