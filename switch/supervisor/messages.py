"""Messages for the owner (Telefonnotiz) in the supervisor: file, mail, announce.

Theory of operation
-------------------
The assistant's console posts a message (:mod:`switch.web.messages_api`).
:class:`MessageDesk` (one per supervisor, an ``async with`` object) then

1. files it in the calls database (:class:`switch.records.messages.MessageStore`, or
   with ``records.backend: postgresql`` the shared schema: every node's console sees it);
2. mails it at once to the plan's ``owner_email`` through the business's own mail server
   (settings ``smtp:`` / ``smtp_tenants:``; :mod:`switch.mail`), in the plan's language
   (``language:``, German by default), and notes ``mailed_at`` or ``mail_error``;
3. publishes ``rufweiche/v1/<tenant>/message`` (:meth:`presence.topics.Topics.event`, QoS 1,
   not retained) through the one MQTT bridge;
4. tells the live pages (``listeners``: the owner's page gets it over its event stream).

Steps 2 and 3 run in the background: a mail server or broker that is down never loses the
message (it is filed first) and never delays the answer to the page. In-flight deliveries
are awaited (bounded) when the desk closes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

import aiomqtt

from presence.errors import PresenceError
from rules import DialPlan
from switch import i18n
from switch.errors import MailError
from switch.mail import MailServer, message_mail, send
from switch.records.messages import Message, MessageStore
from switch.supervisor.deliveries import Deliveries
from switch.supervisor.voicemail import Publisher

log = logging.getLogger("switch.supervisor.messages")

DELIVERY_TIMEOUT_S = 15.0

PlanOf = Callable[[str], DialPlan | None]
ServerOf = Callable[[str], MailServer | None]
Listener = Callable[[dict[str, Any]], None]


class MessageDesk:
    """Takes messages for owners and delivers them (see the module docstring)."""

    def __init__(
        self,
        db_path: Path,
        plan_of: PlanOf,
        server_of: ServerOf,
        mqtt: Publisher | None = None,
        *,
        timeout: float = DELIVERY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        store: MessageStore | None = None,
    ) -> None:
        # ``store``: another backend's (records.backend.message_store: PostgreSQL)
        self.store = store if store is not None else MessageStore(db_path)
        self.plan_of = plan_of
        self.server_of = server_of
        self.mqtt = mqtt
        self.timeout = timeout
        self.clock = clock
        self.listeners: list[Listener] = []
        self._deliveries = Deliveries(timeout)

    async def __aenter__(self) -> Self:
        await self.store.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._deliveries.close()
        await self.store.__aexit__(exc_type, exc, tb)

    async def take(self, message: Message) -> dict[str, Any]:
        """File ``message`` and start its delivery; the stored row."""
        stored = await self.store.add(message)
        row = stored.row()
        log.info("message tenant=%s id=%s taken by %s", stored.tenant, stored.id, stored.taken_by)
        for listener in self.listeners:
            listener(row)
        self._deliveries.start(self._mail(stored, row))
        if self.mqtt is not None:
            self._deliveries.start(self._announce(self.mqtt, row))
        return row

    async def idle(self) -> None:
        """Wait until every delivery in flight has ended (tests, shutdown)."""
        await self._deliveries.idle()

    async def list(self, tenant: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.store.list(tenant, limit)

    async def tenant_of(self, row_id: int) -> str | None:
        return await self.store.tenant_of(row_id)

    async def contact(self, tenant: str, number: str) -> dict[str, Any] | None:
        return await self.store.contact(tenant, number)

    async def mark_done(self, row_id: int) -> dict[str, Any] | None:
        return await self.store.mark_done(row_id, self.clock())

    async def _mail(self, message: Message, row: dict[str, Any]) -> None:
        assert message.id is not None
        plan = self.plan_of(message.tenant)
        server = self.server_of(message.tenant)
        if plan is None or plan.spec.owner_email is None or server is None:
            why = "no owner_email in the plan" if server else "no smtp: server for the tenant"
            await self.store.mailed(message.id, self.clock(), why)
            log.warning("message tenant=%s id=%s not mailed: %s", message.tenant, message.id, why)
            return
        lang = i18n.choose(plan.spec.language)
        local = dt.datetime.fromtimestamp(message.taken_wall, ZoneInfo(plan.timezone))
        with i18n.using(lang):
            taken_local = i18n.format_datetime(local)
        mail = message_mail(
            {**row, "taken_local": taken_local},
            plan.name,
            to=plan.spec.owner_email,
            sender=server.sender or plan.spec.owner_email,
            lang=lang,
        )
        try:
            async with asyncio.timeout(self.timeout):
                await send(server, mail)
        except (MailError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
            log.warning("message tenant=%s id=%s not mailed: %s", message.tenant, message.id, error)
            await self.store.mailed(message.id, self.clock(), error)
            return
        await self.store.mailed(message.id, self.clock(), None)

    async def _announce(self, mqtt: Publisher, row: dict[str, Any]) -> None:
        try:
            topic = mqtt.topics.event(row["tenant"], "message")
            body = json.dumps(row, ensure_ascii=False).encode()
            async with asyncio.timeout(self.timeout):
                await mqtt.publish(topic, body, qos=1, retain=False)
        except (PresenceError, aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.warning("message tenant=%s not announced over MQTT: %s", row["tenant"], exc)


async def caller_history(
    recent_calls: Callable[..., Any], desk: MessageDesk, tenant: str, number: str
) -> dict[str, Any]:
    """The last calls and messages of ``number`` for ``tenant``, and its contact (the card)."""
    calls = await recent_calls(tenant=tenant, limit=200, with_legs=False)
    mine = [
        {k: c.get(k) for k in ("started_at", "outcome", "answered_by", "rule")}
        for c in calls
        if c.get("caller") == number and c.get("outcome") is not None
    ]
    notes = [m for m in await desk.list(tenant, limit=200) if m.get("number") == number]
    return {"calls": mine[:5], "messages": notes[:5], "contact": await desk.contact(tenant, number)}


__all__ = ["MessageDesk", "caller_history"]
