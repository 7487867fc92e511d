"""Login and TOTP enrolment driven in headless Chromium (Debian's /usr/bin/chromium via
Playwright with the flags of PEERS.md §4; never ``playwright install``). The TOTP codes
are computed here with pyotp from the secret the page shows at enrolment."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from tests.helpers.web import PASSWORD, auth_site, chromium_page, needs_chromium

pytestmark = [
    pytest.mark.peer,
    needs_chromium,
]


async def test_enrol_then_dashboard_then_logout(tmp_path: Path) -> None:
    async with auth_site(tmp_path) as site, chromium_page() as page:
        await page.goto(site.url + "/dashboard")
        assert page.url == site.url + "/login?next=/dashboard"
        await page.fill("#user", "neu")
        await page.fill("#password", PASSWORD)
        await page.click("#login-button")  # no code yet: enrolment follows
        await page.locator("#enrol-form").wait_for(state="visible", timeout=5_000)
        secret = (await page.inner_text("#enrol-secret")).strip()
        uri = (await page.inner_text("#enrol-uri")).strip()
        assert uri == pyotp.TOTP(secret).provisioning_uri(name="neu", issuer_name="Rufweiche")
        assert await page.locator("#enrol-qr svg path").count() == 1
        assert site.users_file.load().users["neu"].totp is None  # not before a good code

        await page.fill("#enrol-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "1")
        await page.click("#enrol-button")
        await page.locator("#error").wait_for(state="visible", timeout=5_000)
        await page.fill("#enrol-code", pyotp.TOTP(secret).now())
        await page.click("#enrol-button")
        await page.wait_for_url(site.url + "/dashboard", timeout=5_000)
        assert site.users_file.load().users["neu"].totp == secret

        # the dashboard runs with the session cookie, and shows only his tenant
        await page.locator("#conn.conn-live").wait_for(timeout=10_000)
        await page.locator('#presence [data-tenant="mueller"]').wait_for(timeout=5_000)
        assert await page.locator('#presence [data-tenant="schmidt"]').count() == 0
        me = await page.evaluate("fetch('/api/v1/me').then(r => r.json())")
        assert me["user"] == "neu"
        # the session cookie is out of the page's reach (HttpOnly)
        assert "rw_session" not in await page.evaluate("document.cookie")

        await page.goto(site.url + "/login")
        await page.locator("#signed-in").wait_for(state="visible", timeout=5_000)
        await page.click("#logout-button")
        await page.locator("#login-form").wait_for(state="visible", timeout=5_000)
        status = await page.evaluate("fetch('/api/v1/me').then(r => r.status)")
        assert status == 401

        # a known user signs in with password and code
        await page.fill("#user", "otto")
        await page.fill("#password", PASSWORD)
        await page.fill("#code", site.totp("otto"))
        await page.click("#login-button")
        await page.wait_for_url(site.url + "/dashboard", timeout=5_000)
    events = [(e["event"], e["who"]) for e in site.audit.read() if e["event"] != "data_read"]
    assert events == [
        ("login_failed", "neu"),
        ("enrolled", "neu"),
        ("login", "neu"),
        ("logout", "neu"),
        ("login", "otto"),
    ]


async def test_wrong_code_shows_an_error_and_no_session(tmp_path: Path) -> None:
    async with auth_site(tmp_path) as site, chromium_page() as page:
        await page.goto(site.url + "/login")
        await page.fill("#user", "otto")
        await page.fill("#password", PASSWORD)
        code = site.totp("otto")
        await page.fill("#code", f"{(int(code) + 1) % 1_000_000:06d}")
        await page.click("#login-button")
        await page.locator("#error").wait_for(state="visible", timeout=5_000)
        assert await page.inner_text("#error") == "user name, password or code is wrong"
        assert page.url == site.url + "/login"
        status = await page.evaluate("fetch('/api/v1/me').then(r => r.status)")
        assert status == 401
