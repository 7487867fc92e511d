"""What the issue-18 tests share: a real SMTP server (aiosmtpd, STARTTLS with a
certificate made by openssl for 127.0.0.1), the two-tenant dial plans, the desk site."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from presence.http import presence_routes
from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from rules import DialPlan, load_dialplans
from switch.access.audit import AuditLog
from switch.access.policy import Role
from switch.access.users import Users, UsersFile, add_token, add_user
from switch.mail import MailServer
from switch.metrics import Metrics
from switch.supervisor.messages import MessageDesk
from switch.web.app import Health, make_app, serve
from switch.web.dashboard import DashboardState, LiveFeed
from switch.web.guard import AuthLayer
from switch.web.messages_api import messages_routes
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.web import CHEAP, DIRECTORY, NOV, PASSWORD, chromium_page, make_users

if TYPE_CHECKING:
    from playwright.async_api import Page

PLANS = {
    "mueller": """\
tenant: mueller
name: Tischlerei Müller
owner_email: otto@tischlerei-mueller.example
greeting: "Tischlerei Müller, Sekretariat, guten Tag"
numbers: ["+49 2331 987654-0"]
people:
  otto: {name: Otto Müller, devices: {desk: "sip:201@office"}}
rules:
  - name: otto
    then: [{ring: otto}]
""",
    "schmidt": """\
tenant: schmidt
name: Elektro Schmidt
language: en
owner_email: sven@schmidt.example
numbers: ["+49 2331 55555-0"]
people:
  sven: {name: Sven Schmidt, devices: {desk: "sip:301@office"}}
rules:
  - name: sven
    then: [{ring: sven}]
""",
}


def load_plans(tmp_path: Path) -> dict[str, DialPlan]:
    files = []
    for tenant, text in PLANS.items():
        path = tmp_path / f"{tenant}.yaml"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    plans = load_dialplans(files)
    return dict(plans.plans)


class Inbox:
    """aiosmtpd's handler: keeps every envelope it was handed."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.tls.append(session.ssl is not None)
        return "250 OK"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the business's own mail server)."""
    cert, key = directory / "smtp.crt", directory / "smtp.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@dataclass
class MailSink:
    inbox: Inbox
    server: MailServer
    controller: Controller


@contextlib.contextmanager
def smtp_server(directory: Path) -> Iterator[MailSink]:
    """aiosmtpd on a free loopback port that requires STARTTLS."""
    cert, key = make_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        yield MailSink(inbox, MailServer("127.0.0.1", port, True, cafile=cert), controller)
    finally:
        controller.stop()


@dataclass
class DeskSite:
    url: str
    desk: MessageDesk
    users_file: UsersFile
    plans: dict[str, DialPlan]
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def desk_site(
    tmp_path: Path, server: MailServer | None, bridge: PresenceBridge | None = None
) -> AsyncIterator[DeskSite]:
    users_file = UsersFile(tmp_path / "users.yaml")
    users_file.save(make_users())
    layer = AuthLayer(users_file, AuditLog(tmp_path / "audit.jsonl"), passwords=CHEAP)
    plans = load_plans(tmp_path)
    hub = PresenceHub(DIRECTORY)
    metrics = Metrics()
    feed = LiveFeed(DashboardState(metrics.window))
    desk = MessageDesk(tmp_path / "records.db", plans.get, lambda _t: server, bridge)
    async with desk:
        app = make_app(
            None,
            metrics,
            Health(workers=lambda: (1, 1), database_writable=lambda: True),
            presence_routes(hub),
            messages_routes(desk),
            feed=feed,
            auth=layer,
        )
        async with serve(app) as url:
            yield DeskSite(url, desk, users_file, plans)


__all__ = [
    "NOV",
    "OTHER_PLAN",
    "TO_SERVICE",
    "DeskSite",
    "Inbox",
    "MailSink",
    "console_page",
    "desk_site",
    "http",
    "load_plans",
    "service_plan",
    "smtp_server",
    "switch_users",
    "users_with_tokens",
    "write_plans",
]

# ------------------------------------------- the console tests against ``rufweiche run``

# susi's business (users_with_tokens): what she must never see of tischlerei-test.
OTHER_PLAN = """
tenant: elektro-test
name: Elektro Test
numbers: ["+49 30 5550000"]
people:
  sven: {name: Sven, devices: {desk: "sip:sven@127.0.0.1:9"}}
rules:
  - {name: sven, then: [{ring: sven.desk}]}
"""


TO_SERVICE = "  - {name: the service, then: [{ring: [heimbuero.anna], timeout: 10s}]}\n"


def service_plan(
    anna: str | None,
    *,
    jan: str = f'desk: "sip:jan@{LOOPBACK}:9"',
    head: str = "",
    rules: str = TO_SERVICE,
) -> str:
    """tischlerei-test: by default every call rings the service (anna's phone at ``anna``,
    host:port; None: no service); ``jan`` are Jan's devices, ``head`` more top-level keys
    (greeting, instructions, schedules), ``rules`` the rules' lines."""
    service = (
        f'service:\n  heimbuero: {{name: Heimbüro, devices: {{anna: "sip:anna@{anna}"}}}}\n'
        if anna is not None
        else ""
    )
    return f"""
tenant: tischlerei-test
name: Tischlerei Test
{head}numbers: ["+49 30 1234560"]
people:
  jan: {{name: Jan, devices: {{{jan}}}}}
{service}rules:
{rules}"""


def write_plans(tmp_path: Path, test_plan: str) -> Path:
    """``tmp_path/plans`` with ``test.yaml`` (``test_plan``) and susi's ``other.yaml``."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "test.yaml").write_text(test_plan, encoding="utf-8")
    (plans / "other.yaml").write_text(OTHER_PLAN, encoding="utf-8")
    return plans


@contextlib.asynccontextmanager
async def console_page(
    url: str, token: str, width: int = 1200, height: int = 1100
) -> AsyncIterator[tuple[Page, list[str]]]:
    """The console at ``url`` in Chromium as the user of ``token``, once it is live; with
    the list the page's script errors go to."""
    headers = {"Authorization": f"Bearer {token}"}
    async with chromium_page(width, height, extra_http_headers=headers) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(url + "/console")
        await page.locator("#status", has_text="live").wait_for(timeout=10_000)
        yield page, errors


def users_with_tokens(path: Path) -> dict[str, str]:
    users = Users()
    for name, role, tenants, person in (
        ("anna", Role.ASSISTANT, ["tischlerei-test"], "heimbuero"),
        ("otto", Role.OWNER, ["tischlerei-test"], "jan"),
        ("susi", Role.ASSISTANT, ["elektro-test"], "susi"),
    ):
        users = add_user(
            users, name, role=role, password_hash=CHEAP.hash(PASSWORD), tenants=tenants,
            person=person,
        )  # fmt: skip
    # susi reads her pages in English (language: in the users file)
    susi = users.users["susi"].model_copy(update={"language": "en"})
    users = users.model_copy(update={"users": {**users.users, "susi": susi}})
    tokens = {}
    for name in ("anna", "otto", "susi"):
        users, token, _entry = add_token(users, name, label="t", tenants=(), now=NOV)
        tokens[name] = token
    UsersFile(path).save(users)
    return tokens


def switch_users(tmp_path: Path) -> dict[str, str]:
    """:func:`users_with_tokens` as the users file of the switch's data directory
    (``tmp_path/var``, made here); the tokens by user name."""
    data = tmp_path / "var"
    data.mkdir()
    return users_with_tokens(data / "users.yaml")


def http(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())
