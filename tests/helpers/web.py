"""The HTTP app on a real socket around real components, a headless Chromium, the auth site.

For tests that need the running dashboard (HTTP API, SSE, browser, and the end-to-end
SIPp call)::

    async with live_app(tmp_path) as board:
        board.report("started", record)          # what the supervisor does per report
        async with chromium_page() as page:
            await page.goto(board.url + "/dashboard")

``auth_site(tmp_path)`` is the same app with the auth layer, around the real record writer.

Two tenants: ``mueller`` (people otto, anna, bob) and ``schmidt`` (sven). Users (password
``PASSWORD`` for all, TOTP already enrolled except for ``neu``):

========  =========  ========  ======
user      role       tenants   person
========  =========  ========  ======
otto      owner      mueller   otto
anna      assistant  mueller   anna
olga      ops        (all)
sven      owner      schmidt   sven
neu       owner      mueller   bob     (no TOTP yet: enrols at first login)
========  =========  ========  ======
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pyotp
import pytest
from aiohttp import web
from argon2 import PasswordHasher

from presence.http import presence_routes as presence_http_routes
from presence.hub import PresenceHub
from switch.access.audit import AuditLog
from switch.access.passwords import Passwords
from switch.access.policy import Role
from switch.access.users import Options, Users, UsersFile, add_token, add_user, set_totp
from switch.call.calllog import CallRecord
from switch.metrics import Metrics
from switch.records.schema import RECORDS_FILE
from switch.records.writer import RecordWriter
from switch.supervisor.voicemail import VoicemailBox
from switch.web.app import Health, make_app, serve
from switch.web.dashboard import DashboardState, LiveFeed
from switch.web.guard import CSRF_COOKIE, CSRF_HEADER, AuthLayer
from switch.web.voicemail_api import voicemail_routes
from tests.helpers.records import make_record

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"
)
# PEERS.md §4: without the resolver rule Chromium still looks up Google hosts on eth0.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@dataclass
class LiveApp:
    """The parts the supervisor owns, wired as it wires them, around a running app."""

    url: str
    writer: RecordWriter
    metrics: Metrics
    feed: LiveFeed
    workers: dict[str, bool] = field(default_factory=dict)
    box: VoicemailBox | None = None  # with voicemails=True: the box the routes serve

    def report(self, phase: str, record: CallRecord, store_caller: str = "full") -> None:
        self.writer.submit(phase, record, store_caller=store_caller)
        self.metrics.observe(phase, record)
        self.feed.observe(phase, record)

    def set_worker(self, name: str, *, up: bool, in_use: int = 0, capacity: int = 4) -> None:
        self.workers[name] = up
        self.metrics.set_worker(name, up=up, in_use=in_use, capacity=capacity)
        self.feed.set_worker(name, up=up, in_use=in_use, capacity=capacity)


@contextlib.asynccontextmanager
async def live_app(
    data_dir: Path,
    *,
    presence_routes: Iterable[web.AbstractRouteDef] | None = None,
    refresh: float = 0.3,
    voicemails: bool = False,
) -> AsyncIterator[LiveApp]:
    """Records in ``data_dir/calls.sqlite3``, fresh metrics and feed, the app on a free port;
    ``voicemails``: with the voicemail box and its routes (recordings under ``data_dir``)."""
    metrics = Metrics()
    # refresh: a closed page is noticed at the next write, at the latest after this.
    feed = LiveFeed(DashboardState(metrics.window), min_interval=0.05, refresh=refresh)
    workers: dict[str, bool] = {"w1": True}
    async with contextlib.AsyncExitStack() as stack:
        writer = await stack.enter_async_context(RecordWriter(data_dir / RECORDS_FILE))
        box, extra = None, []
        if voicemails:
            box = await stack.enter_async_context(VoicemailBox(data_dir / RECORDS_FILE))
            extra = voicemail_routes(box, data_dir)
        health = Health(
            workers=lambda: (sum(workers.values()), len(workers)),
            database_writable=lambda: writer.writable,
            broker=lambda: True,
        )
        app = make_app(writer, metrics, health, presence_routes, extra, feed=feed)
        async with serve(app) as url:
            yield LiveApp(url, writer, metrics, feed, workers, box)


@contextlib.asynccontextmanager
async def chromium_page(
    width: int = 1280, height: int = 900, extra_http_headers: dict[str, str] | None = None
) -> AsyncIterator[Page]:
    """A page in headless Chromium (Debian's /usr/bin/chromium, never a downloaded one)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(
                viewport={"width": width, "height": height},
                extra_http_headers=extra_http_headers,
            )
            yield page
        finally:
            await browser.close()


# ----------------------------------------------------------------------- the auth site

PASSWORD = "correct horse battery"
CHEAP = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
DIRECTORY = {"mueller": {"otto", "anna", "bob"}, "schmidt": {"sven"}}
NOV = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def make_users(options: dict[str, Any] | None = None) -> Users:
    h = CHEAP.hash(PASSWORD)
    users = Users(options=Options(**(options or {})))
    people = [
        ("otto", Role.OWNER, ["mueller"], "otto"),
        ("anna", Role.ASSISTANT, ["mueller"], "anna"),
        ("olga", Role.OPS, [], None),
        ("sven", Role.OWNER, ["schmidt"], "sven"),
        ("neu", Role.OWNER, ["mueller"], "bob"),
    ]
    for name, role, tenants, person in people:
        users = add_user(users, name, role=role, password_hash=h, tenants=tenants, person=person)
        if name != "neu":
            users = set_totp(users, name, pyotp.random_base32())
    return users


@dataclass
class Site:
    url: str
    layer: AuthLayer
    users_file: UsersFile
    audit: AuditLog
    hub: PresenceHub
    feed: LiveFeed

    def token(self, user: str, tenants: tuple[str, ...] = ()) -> tuple[str, str]:
        """A new bearer token for ``user`` (as `users token create` makes it): (token, id)."""
        users, token, entry = add_token(
            self.users_file.load(), user, label="test", tenants=tenants, now=NOV
        )
        self.users_file.save(users)
        return token, entry.id

    def totp(self, user: str) -> str:
        secret = self.users_file.load().users[user].totp
        assert secret is not None
        return pyotp.TOTP(secret).now()


@contextlib.asynccontextmanager
async def auth_site(tmp_path: Path, options: dict[str, Any] | None = None) -> AsyncIterator[Site]:
    users_file = UsersFile(tmp_path / "users.yaml")
    users_file.save(make_users(options))
    audit = AuditLog(tmp_path / "audit.jsonl")
    layer = AuthLayer(users_file, audit, passwords=CHEAP, fail_delay=0.05)
    hub = PresenceHub(DIRECTORY)
    metrics = Metrics()
    feed = LiveFeed(DashboardState(metrics.window), min_interval=0.02, refresh=0.3)
    for tenant in DIRECTORY:
        feed.set_presence(tenant, dict(hub.snapshot(tenant)))
    async with RecordWriter(tmp_path / "records.db") as writer:
        calls = [
            make_record(tenant="mueller", started_wall=NOV + 10, answer_relayed_ms=900.0),
            dataclasses.replace(
                make_record(tenant="mueller", started_wall=NOV + 20, answer_relayed_ms=800.0),
                answered_by="anna.desk",
            ),
            make_record(tenant="schmidt", started_wall=NOV + 30),
        ]
        for record in calls:
            writer.submit("started", record)
            metrics.observe("started", record)
            feed.observe("started", record)
        await writer.flush()
        health = Health(workers=lambda: (1, 1), database_writable=lambda: writer.writable)
        async with VoicemailBox(tmp_path / "records.db") as box:
            for tenant, n in (("mueller", 1), ("schmidt", 2)):
                wav = tmp_path / "voicemail" / tenant / f"vm{n}.wav"
                wav.parent.mkdir(parents=True, exist_ok=True)
                wav.write_bytes(b"RIFF-test-" + tenant.encode())
                message = {
                    "tenant": tenant,
                    "call_id": f"vm-{n}",
                    "caller": "+4917112345678",
                    "called": "+49301234567",
                    "path": str(wav),
                    "seconds": 3.0,
                    "started_wall": NOV + 40 + n,
                }
                await box.add(message, "full")
            app = make_app(
                writer,
                metrics,
                health,
                presence_http_routes(hub),
                voicemail_routes(box, tmp_path),
                feed=feed,
                auth=layer,
            )
            async with serve(app) as url:
                yield Site(url, layer, users_file, audit, hub, feed)


def client(local_addr: str | None = None) -> aiohttp.ClientSession:
    """A browser-like client: keeps cookies for 127.0.0.1 (unsafe=True: an IP host)."""
    connector = aiohttp.TCPConnector(local_addr=(local_addr, 0) if local_addr else None)
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector)


async def login(
    session: aiohttp.ClientSession, url: str, user: str, password: str, code: str
) -> tuple[int, dict[str, Any]]:
    """What the login page does: GET /login (CSRF cookie), POST /login with the header."""
    async with session.get(url + "/login") as response:
        assert response.status == 200
    csrf = csrf_of(session)
    async with session.post(
        url + "/login",
        json={"user": user, "password": password, "code": code},
        headers={CSRF_HEADER: csrf},
    ) as response:
        return response.status, await response.json()


def csrf_of(session: aiohttp.ClientSession) -> str:
    for cookie in session.cookie_jar:
        if cookie.key == CSRF_COOKIE:
            return cookie.value
    return ""


def box_message(wav: Path, seconds: float, **fields: str) -> dict[str, Any]:
    """A message of tischlerei for :class:`VoicemailBox.add`: the file ``wav`` of
    ``seconds``, recorded now; ``fields`` (call_id, caller, called, kind, person) add."""
    return {
        "tenant": "tischlerei",
        "path": str(wav),
        "seconds": seconds,
        "started_wall": time.time(),
        **fields,
    }


async def dashboard_row(page: Page, url: str, card: str) -> tuple[Locator, str]:
    """The dashboard of the app at ``url`` opened in ``page``: the first row of the table
    ``#card`` once it is shown, and its text."""
    await page.goto(url + "/dashboard")
    row = page.locator(f"#{card} tbody tr")
    await row.wait_for(timeout=10_000)
    return row, await row.inner_text()
