"""Messages for the owner (Telefonnotiz, issue 18) against real peers: the assistant takes
one over HTTP, the owner's mail server (aiosmtpd, STARTTLS required) receives it with
umlauts in subject and body, and it arrives on MQTT (a test-owned Mosquitto); owners see
only their own, assistants those of the businesses they serve."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from presence.hub import PresenceHub
from presence.mqtt import PresenceBridge
from presence.topics import Topics
from switch.access.policy import Role
from switch.access.users import add_token, add_user
from switch.cli.report import report_main
from switch.records.messages import taken_per_tenant
from switch.records.schema import connect
from tests.helpers.desk import NOV, DeskSite, desk_site, smtp_server
from tests.helpers.mosquitto import mosquitto_broker
from tests.helpers.web import CHEAP, DIRECTORY, PASSWORD

pytestmark = [pytest.mark.peer]

NOTE = {
    "tenant": "mueller",
    "caller_name": "Frau Jürgens",
    "number": "+49 171 5550100",
    "concern": "Die Tür klemmt – bitte Maß nehmen für die Küchenfront (Größe 2×3 m).",
    "urgency": "urgent",
    "callback": True,
}


def bearer(site: DeskSite, user: str) -> dict[str, str]:
    users, token, _entry = add_token(site.users_file.load(), user, label="t", tenants=(), now=NOV)
    site.users_file.save(users)
    return {"Authorization": f"Bearer {token}"}


async def test_message_is_mailed_with_starttls_and_announced(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as sink, mosquitto_broker(tmp_path) as broker:
        hub = PresenceHub(DIRECTORY)
        async with (
            PresenceBridge(hub, broker.host, broker.port, timeout=2, stop_timeout=2) as bridge,
            aiomqtt.Client(broker.host, broker.port) as listener,
        ):
            topic = Topics().event("mueller", "message")
            await listener.subscribe(topic, qos=1)
            await asyncio.wait_for(bridge.connected.wait(), 5)
            async with (
                desk_site(tmp_path, sink.server, bridge) as site,
                aiohttp.ClientSession() as http,
            ):
                anna = bearer(site, "anna")
                async with http.post(site.url + "/api/v1/messages", json=NOTE, headers=anna) as r:
                    assert r.status == 201, await r.text()
                    row = await r.json()
                async with asyncio.timeout(5):
                    async for received in listener.messages:
                        assert str(received.topic) == topic
                        assert isinstance(received.payload, bytes)
                        announced = json.loads(received.payload.decode())
                        break
                await site.desk.idle()
                stored = await site.desk.list("mueller")
    assert announced["concern"] == NOTE["concern"]
    assert announced["id"] == row["id"]
    assert announced["taken_by"] == "anna"
    assert sink.inbox.tls == [True]  # STARTTLS was used (the server requires it)
    envelope = sink.inbox.envelopes[0]
    assert envelope.rcpt_tos == ["otto@tischlerei-mueller.example"]
    raw = envelope.original_content or envelope.content
    assert isinstance(raw, bytes)
    raw.decode("ascii")  # 7-bit on the wire: encoded-words and a transfer encoding
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == (
        "DRINGEND – Telefonnotiz für Tischlerei Müller: Frau Jürgens – Rückruf erbeten"
    )
    assert "=?utf-8?" in raw.decode("ascii").split("\r\n\r\n", 1)[0].lower()
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content()
    assert "Anrufer: Frau Jürgens" in body
    assert "Rufnummer: +49 171 5550100" in body
    assert "Dringlichkeit: dringend" in body
    assert "Rückruf: ja" in body
    assert NOTE["concern"] in body
    assert stored[0]["mailed_at"] is not None
    assert stored[0]["mail_error"] is None


async def test_english_plan_gets_an_english_mail(tmp_path: Path) -> None:
    """Elektro Schmidt's plan says ``language: en``; the owner himself may not take one."""
    with smtp_server(tmp_path) as sink:
        async with desk_site(tmp_path, sink.server) as site, aiohttp.ClientSession() as http:
            users = add_user(
                site.users_file.load(), "susi", role=Role.ASSISTANT,
                password_hash=CHEAP.hash(PASSWORD), tenants=["schmidt"], person="susi",
            )  # fmt: skip
            site.users_file.save(users)
            note = {"tenant": "schmidt", "concern": "Rückruf wegen Angebot", "number": "0170 1"}
            url = site.url + "/api/v1/messages"
            async with http.post(url, json=note, headers=bearer(site, "sven")) as r:
                assert r.status == 403  # taking messages is the service's work
            async with http.post(url, json=note, headers=bearer(site, "susi")) as r:
                assert r.status == 201
            await site.desk.idle()
    [envelope] = sink.inbox.envelopes
    assert envelope.rcpt_tos == ["sven@schmidt.example"]
    assert isinstance(envelope.content, bytes)
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == "Message for Elektro Schmidt: 0170 1"
    body = mail.get_content()
    assert "Caller: –" in body
    assert "Concern:\r\nRückruf wegen Angebot\r\n" in body
    assert "Call back: no" in body


async def test_scoping_and_done(tmp_path: Path) -> None:
    async with desk_site(tmp_path, None) as site, aiohttp.ClientSession() as http:
        anna, otto, sven = (bearer(site, u) for u in ("anna", "otto", "sven"))
        url = site.url + "/api/v1/messages"
        async with http.post(url, json=NOTE, headers=anna) as r:
            assert r.status == 201
            row = await r.json()
        # anna serves mueller only: schmidt is "not found", as if it did not exist
        async with http.post(url, json={**NOTE, "tenant": "schmidt"}, headers=anna) as r:
            assert r.status == 404
        async with http.post(url, json={**NOTE, "urgency": "sofort"}, headers=anna) as r:
            assert r.status == 400
            assert "urgency" in (await r.json())["error"]
        async with http.get(url, headers=otto) as r:
            assert [m["id"] for m in (await r.json())["messages"]] == [row["id"]]
        async with http.get(url, headers=sven) as r:
            assert (await r.json())["messages"] == []
        async with http.get(url + "?tenant=mueller", headers=sven) as r:
            assert r.status == 404
        done = f"{url}/{row['id']}/done"
        async with http.post(done, headers=sven) as r:
            assert r.status == 404  # another's message
        async with http.post(done, headers=anna) as r:
            assert r.status == 403  # the owner marks it done, not the service
        async with http.post(done, headers=otto) as r:
            assert r.status == 200
            assert (await r.json())["done_at"]
        await site.desk.idle()
        listed = await site.desk.list("mueller")
    assert listed[0]["mail_error"] == "no smtp: server for the tenant"
    db = await connect(tmp_path / "records.db")
    try:
        assert await taken_per_tenant(db, 0, 4e9) == {"mueller": 1}
    finally:
        await db.close()
    # the usage report counts it (a message taken is billable work)
    out = io.StringIO()
    month = datetime.now(UTC).strftime("%Y-%m")
    db_path = tmp_path / "records.db"
    code = await asyncio.to_thread(report_main, month, None, "csv", db_path, tz="UTC", out=out)
    assert code == 0
    header, row_line = out.getvalue().splitlines()[:2]
    assert header.endswith(",messages")
    assert row_line.startswith("mueller,0,")
    assert row_line.endswith(",1")
