"""Notices to the owner: missed calls, voicemails and dictations, by e-mail and MQTT (issue 18).

:class:`Notifier` hears every call report (the supervisor's call listener) and every
recording filed (the voicemail box's listener). A call that ended ``missed`` or
``cancelled`` without a voicemail (which sends its own notice) becomes a ``missed``
notice: ``rufweiche/v1/<tenant>/missed`` on MQTT and an e-mail to the plan's
``owner_email:`` through the business's own mail server. A voicemail or dictation is
mailed with its WAV attached (``notify.recordings: attach``, the default) or linked
(``link``: the URL under ``notify.base_url``); its MQTT notice is the voicemail box's own.
Like the message desk, all of it runs in the background and never delays a call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiomqtt

from presence.errors import PresenceError
from switch import i18n
from switch.call.calllog import CallRecord
from switch.errors import MailError
from switch.mail import notice_mail, send
from switch.records.voicemails import Voicemail
from switch.supervisor.deliveries import Deliveries
from switch.supervisor.messages import PlanOf, ServerOf
from switch.supervisor.voicemail import Publisher

log = logging.getLogger("switch.supervisor.notices")

MISSED_OUTCOMES = frozenset({"missed", "cancelled"})
Recordings = Literal["attach", "link", "none"]


class Notifier:
    def __init__(
        self,
        plan_of: PlanOf,
        server_of: ServerOf,
        mqtt: Publisher | None = None,
        *,
        missed: bool = True,
        recordings: Recordings = "attach",
        base_url: str | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.plan_of = plan_of
        self.server_of = server_of
        self.mqtt = mqtt
        self.missed = missed
        self.recordings = recordings
        self.base_url = (base_url or "").rstrip("/")
        self.timeout = timeout
        self._deliveries = Deliveries(timeout)
        self.sent: list[str] = []  # kinds of the notices mailed (tests, logs)

    def on_call(self, phase: str, record: CallRecord) -> None:
        if phase != "ended" or not self.missed or record.tenant is None:
            return
        if record.outcome not in MISSED_OUTCOMES or record.final_action == "voicemail":
            return
        notice = {
            "call_id": record.call_id,
            "caller": record.caller,
            "called": record.called,
            "time": dt.datetime.fromtimestamp(record.started_wall, dt.UTC).isoformat(),
            "started_wall": record.started_wall,
            "outcome": record.outcome,
        }
        self._deliveries.start(self._deliver("missed", record.tenant, notice, None))
        if self.mqtt is not None:
            self._deliveries.start(self._announce(self.mqtt, record.tenant, notice))

    def on_recording(self, mail: Voicemail) -> None:
        if self.recordings == "none":
            return
        notice: dict[str, Any] = {
            "call_id": mail.call_id,
            "caller": mail.caller,
            "called": mail.called,
            "seconds": mail.seconds,
            "started_wall": mail.started_wall,
            "file": Path(mail.path).name,
        }
        wav: Path | None = None
        if self.recordings == "attach":
            wav = Path(mail.path)
        elif self.base_url:
            notice["url"] = f"{self.base_url}/files/{mail.kind}/{mail.tenant}/{notice['file']}"
        self._deliveries.start(self._deliver(mail.kind, mail.tenant, notice, wav))

    async def idle(self) -> None:
        await self._deliveries.idle()

    async def close(self) -> None:
        await self._deliveries.close()

    async def _deliver(
        self, kind: str, tenant: str, notice: dict[str, Any], wav: Path | None
    ) -> None:
        plan = self.plan_of(tenant)
        server = self.server_of(tenant)
        if plan is None or plan.spec.owner_email is None or server is None:
            return  # nowhere to mail it: MQTT and the owner's page still have it
        lang = i18n.choose(plan.spec.language)
        local = dt.datetime.fromtimestamp(notice["started_wall"], ZoneInfo(plan.timezone))
        with i18n.using(lang):
            notice = {**notice, "when": i18n.format_datetime(local)}
        try:
            data = await asyncio.to_thread(wav.read_bytes) if wav is not None else None
            mail = notice_mail(
                kind,
                notice,
                plan.name,
                to=plan.spec.owner_email,
                sender=server.sender or plan.spec.owner_email,
                lang=lang,
                wav=data,
            )
            async with asyncio.timeout(self.timeout):
                await send(server, mail)
        except (MailError, TimeoutError, OSError) as exc:
            log.warning("%s notice tenant=%s not mailed: %s", kind, tenant, exc)
            return
        self.sent.append(kind)

    async def _announce(self, mqtt: Publisher, tenant: str, notice: dict[str, Any]) -> None:
        body = {k: v for k, v in notice.items() if k != "started_wall"}
        try:
            topic = mqtt.topics.event(tenant, "missed")
            async with asyncio.timeout(self.timeout):
                await mqtt.publish(topic, json.dumps(body, ensure_ascii=False).encode(), qos=1)
        except (PresenceError, aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.warning("missed-call notice tenant=%s not sent over MQTT: %s", tenant, exc)


__all__ = ["Notifier"]
