"""The assistant's console and the owner's page (issue 18): pages, live events, call cards.

::

    GET /console                      the assistant's page (role assistant)
    GET /owner                        the owner's page (role owner, mobile first)
    GET /i18n/{lang}.json             the page strings of de or en (public: no data)
    GET /api/v1/desk/events           server-sent events for this login's businesses:
                                      ``card`` (a call rings the service: screen pop),
                                      ``call`` (answered/ended; a call out also
                                      ``outcome_text``, switch/web/clicktocall.py),
                                      ``message`` (a new one)
    GET /api/v1/desk/cards[?tenant=]  the cards of the calls ringing now (a page that opens
                                      late, or reconnects)
    POST /api/v1/contacts             mark a caller as a known contact (tenant, number, name)
    POST /api/v1/calls/{id}/transfer  "put through": switch/web/putthrough.py

Theory of operation
-------------------
:class:`DeskBoard` gets every call report of the workers (``observe(phase, record)``, the
supervisor's call listener) and every message taken (the desk's listener). A ``started``
report carries the legs the worker has just dialled; when one of them goes to a service
(``is_service``), the call is ringing at the secretarial service, and a **card** is built at
once (:func:`card_of`: business, greeting, caller, the caller's name from the address book,
the last calls and messages of that number, the plan's instructions as safe HTML, the
people's presence with until-time and note) and pushed to every open console whose login
serves that business. Each subscriber has its own queue; a slow page drops its oldest
events rather than hold up the switch. The figures on the cards come from the records
database through small callables, so this module needs no supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web

from presence.model import PresenceRecord
from rules import DialPlan
from switch import i18n
from switch.access.policy import Action, Principal, Scope, can
from switch.call.calllog import CallRecord
from switch.masking import mask_number
from switch.web.clicktocall import outcome_text
from switch.web.guard import PUBLIC, Access, declare
from switch.web.request import (
    PRINCIPAL,
    json_error,
    json_object,
    json_response,
    not_found,
    scope_of,
)

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
QUEUE_MAX: Final = 100

PlanOf = Callable[[str], DialPlan | None]
PresenceOf = Callable[[str], list[tuple[str, PresenceRecord]]]
History = Callable[[str, str], Awaitable[dict[str, Any]]]  # (tenant, number) -> calls, notes
SaveContact = Callable[[str, list[tuple[str, str, str | None]]], Awaitable[int]]


def render_markdown(text: str | None) -> str:
    """A small, safe subset of Markdown: everything is escaped first, then paragraphs,
    ``- `` lists, ``**bold**`` and ``*emphasis*``. No links, no raw HTML: instructions
    are written by the owner but shown in the assistant's browser."""
    if not text:
        return ""
    out: list[str] = []
    in_list = False
    for block in text.strip().splitlines():
        line = html.escape(block.strip())
        line = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", line)
        line = re.sub(r"(?<![*\w])\*(?!\s)(.+?)\*(?!\w)", r"<em>\1</em>", line)
        if line.startswith(("- ", "* ")):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{line[2:]}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line:
            out.append(f"<p>{line}</p>")
    if in_list:
        out.append("</ul>")
    return "".join(out)


def presence_line(name: str, record: PresenceRecord, zone: ZoneInfo) -> dict[str, Any]:
    """``{"name": "Jan", "state": "away", "until": "14:00", "note": "auf der Baustelle"}``."""
    until = record.until.astimezone(zone).strftime("%H:%M") if record.until else None
    return {"name": name, "state": str(record.state), "until": until, "note": record.note}


def service_legs(record: CallRecord) -> list[str]:
    """The owners of the legs that ring a service (the assistant's phone) now."""
    return [leg.owner for leg in record.legs if leg.is_service and leg.ended_ns is None]


async def card_of(
    record: CallRecord,
    plan: DialPlan,
    presence: list[tuple[str, PresenceRecord]],
    history: History,
) -> dict[str, Any]:
    """What the assistant needs to answer this call (see the module docstring)."""
    zone = ZoneInfo(plan.timezone)
    lang = i18n.choose(plan.spec.language)
    number = record.caller
    known: dict[str, Any] = {"calls": [], "messages": [], "contact": None}
    if number:
        known = await history(plan.tenant, number)
    people = []
    for person_id, state in presence:
        person = plan.person(person_id)
        if person is None or person_id in plan.service:
            continue  # the service itself is not "who is there" for the caller
        line = presence_line(person.name, state, zone)
        # "put through" picks one of these (switch/web/putthrough.py): jan.mobile, jan.desk
        line["targets"] = [f"{person_id}.{device}" for device in person.devices]
        people.append(line)
    with i18n.using(lang):
        greeting = plan.spec.greeting or i18n._("{business}, good day").format(
            business=plan.announce_as
        )
    contact = known.get("contact") or {}
    return {
        "call_id": record.call_id,
        "tenant": plan.tenant,
        "business": plan.name,
        "greeting": greeting,
        "caller": number,
        "caller_name": contact.get("name"),
        "contact_note": contact.get("note"),
        "called": record.called,
        "rule": record.rule,
        "services": service_legs(record),
        "started_at": datetime.fromtimestamp(record.started_wall, zone).isoformat(),
        "last_calls": known.get("calls", [])[:5],
        "notes": known.get("messages", [])[:5],
        "instructions_html": render_markdown(plan.spec.instructions),
        "presence": people,
        "language": lang,
    }


@dataclass(eq=False)  # by identity: subscribers live in a set
class _Subscriber:
    scope: Scope
    person: str | None
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX)
    )


class DeskBoard:
    """The live side of the console (see the module docstring)."""

    def __init__(
        self,
        plan_of: PlanOf,
        presence_of: PresenceOf,
        history: History,
        contacts: SaveContact | None = None,
    ) -> None:
        self.plan_of = plan_of
        self.presence_of = presence_of
        self.history = history
        self.contacts = contacts
        self.cards: dict[str, dict[str, Any]] = {}  # call id -> card, while it rings
        self._subscribers: set[_Subscriber] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.pushed: list[tuple[str, float]] = []  # (call id, monotonic) of the last cards

    # -- inputs

    def observe(self, phase: str, record: CallRecord) -> None:
        """A call report of a worker (the supervisor's call listener)."""
        if record.tenant is None:
            return
        if phase == "started" and service_legs(record) and record.call_id not in self.cards:
            self.cards[record.call_id] = {}  # reserved: one card per call
            task = asyncio.get_running_loop().create_task(self._pop(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif phase in ("answered", "ended"):
            if phase == "ended":
                self.cards.pop(record.call_id, None)
            event: dict[str, Any] = {
                "call_id": record.call_id,
                "tenant": record.tenant,
                "phase": phase,
                "answered_by": record.answered_by,
                "outcome": record.outcome,
            }
            if record.direction == "outbound":  # "call back": what became of it, in German
                event["outcome_text"] = outcome_text(phase, record)
            self._push(record.tenant, "call", event)

    def message_taken(self, row: dict[str, Any]) -> None:
        """A message was taken (the desk's listener)."""
        self._push(str(row["tenant"]), "message", row)

    async def _pop(self, record: CallRecord) -> None:
        assert record.tenant is not None
        plan = self.plan_of(record.tenant)
        if plan is None:
            self.cards.pop(record.call_id, None)
            return
        try:
            presence = self.presence_of(record.tenant)
        except Exception:  # an unknown tenant in the hub: the card shows nobody
            presence = []
        card = await card_of(record, plan, presence, self.history)
        if record.call_id not in self.cards:
            return  # ended while the card was being built
        self.cards[record.call_id] = card
        self._push(record.tenant, "card", card)
        self.pushed = [*self.pushed[-99:], (record.call_id, time.monotonic())]
        log.info("card tenant=%s call %s for %s", record.tenant, record.call_id,
                 mask_number(record.caller))  # fmt: skip

    def push(self, tenant: str, kind: str, data: dict[str, Any]) -> None:
        """Tell the live pages of ``tenant`` (a due reminder, issue 18)."""
        self._push(tenant, kind, data)

    def _push(self, tenant: str, kind: str, data: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            if not sub.scope.sees(tenant):
                continue
            if sub.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()  # the oldest goes: the page is too slow
            sub.queue.put_nowait((kind, data))

    async def save_contact(
        self, tenant: str, number: str, name: str, note: str | None
    ) -> dict[str, Any]:
        """Mark a caller as a known contact of ``tenant`` (the card's action)."""
        if self.contacts is not None:
            await self.contacts(tenant, [(number, name, note)])
        return {"tenant": tenant, "number": number, "name": name, "note": note}

    # -- outputs

    def ringing(self, scope: Scope) -> list[dict[str, Any]]:
        return [c for c in self.cards.values() if c and scope.sees(c["tenant"])]

    @contextlib.asynccontextmanager
    async def subscribe(self, scope: Scope) -> AsyncIterator[asyncio.Queue[tuple[str, Any]]]:
        sub = _Subscriber(scope, None)
        self._subscribers.add(sub)
        try:
            yield sub.queue
        finally:
            self._subscribers.discard(sub)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()


DESK_READ: Final = Access(Action.READ_MESSAGES, tenant="all")


def console_routes(board: DeskBoard) -> list[web.RouteDef]:
    """The pages, the catalogues and the live events, each with its Access."""

    def page(name: str, action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def get_page(request: web.Request) -> web.StreamResponse:
            # The guard lets anyone with a tenant reach a page; the page is for one role.
            who = request.get(PRINCIPAL)
            if isinstance(who, Principal) and not any(can(who, action, t) for t in who.tenants):
                return json_error(403, f"{who.role.value} may not {action.value}")
            return web.FileResponse(STATIC_DIR / name)

        return get_page

    async def get_catalogue(request: web.Request) -> web.Response:
        try:
            lang = i18n.language(request.match_info["lang"].removesuffix(".json"))
        except Exception:
            return not_found()
        if lang is None:
            return not_found()
        return json_response({"language": lang, "messages": i18n.catalogue(lang)})

    async def get_me_desk(request: web.Request) -> web.Response:
        who = request.get(PRINCIPAL)
        scope = scope_of(request, by_query=False)
        plans = []
        tenants = sorted(scope.tenants) if scope.tenants is not None else []
        for tenant in tenants:
            plan = board.plan_of(tenant)
            if plan is not None:
                plans.append({"tenant": tenant, "name": plan.name, "language": plan.spec.language})
        language = who.language if isinstance(who, Principal) else None
        return json_response(
            {
                "user": who.name if isinstance(who, Principal) else None,
                "person": who.person if isinstance(who, Principal) else None,
                "role": who.role.value if isinstance(who, Principal) else None,
                "businesses": plans,
                "language": language,  # None: the page keeps its own choice (German)
            }
        )

    async def get_cards(request: web.Request) -> web.Response:
        return json_response({"cards": board.ringing(scope_of(request))})

    async def get_events(request: web.Request) -> web.StreamResponse:
        scope = scope_of(request, by_query=False)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        try:
            async with board.subscribe(scope) as queue:
                await response.write(b"retry: 2000\n\n")
                for card in board.ringing(scope):
                    await response.write(_event("card", card))
                while True:
                    try:
                        kind, data = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        await response.write(b": keep-alive\n\n")
                        continue
                    await response.write(_event(kind, data))
        except ConnectionError:
            pass
        return response

    async def mark_known(request: web.Request) -> web.Response:
        body = await json_object(request, "contact")
        if isinstance(body, web.Response):
            return body
        tenant, number, name = body.get("tenant"), body.get("number"), body.get("name")
        if not (
            isinstance(tenant, str)
            and isinstance(number, str)
            and isinstance(name, str)
            and tenant.strip()
            and number.strip()
            and name.strip()
        ):
            return json_error(400, "contact: tenant, number and name are required")
        who = request.get(PRINCIPAL)
        if isinstance(who, Principal):
            if not who.sees_tenant(tenant):
                return not_found()
            if not can(who, Action.TAKE_MESSAGE, tenant):
                return json_error(403, f"{who.role.value} may not add contacts of {tenant!r}")
        note = body.get("note") if isinstance(body.get("note"), str) else None
        saved = await board.save_contact(tenant, number.strip(), name.strip(), note)
        return json_response(saved, status=201)

    take = Access(Action.READ_MESSAGES, Action.TAKE_MESSAGE)
    return [
        declare(web.post("/api/v1/contacts", mark_known), take),
        declare(
            web.get("/console", page("console.html", Action.VIEW_CONSOLE)),
            Access(Action.VIEW_CONSOLE, page=True),
        ),
        declare(
            web.get("/owner", page("owner.html", Action.VIEW_OWNER_PAGE)),
            Access(Action.VIEW_OWNER_PAGE, page=True),
        ),
        declare(web.get("/i18n/{lang}", get_catalogue), PUBLIC),
        declare(web.get("/api/v1/desk/me", get_me_desk), DESK_READ),
        declare(
            web.get("/api/v1/desk/cards", get_cards), Access(Action.READ_MESSAGES, tenant="query")
        ),
        declare(web.get("/api/v1/desk/events", get_events), DESK_READ),
    ]


def _event(kind: str, data: Mapping[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False)
    return f"event: {kind}\ndata: {body}\n\n".encode()


__all__ = ["DeskBoard", "card_of", "console_routes", "render_markdown"]
