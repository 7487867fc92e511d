"""Click to call (issue 17): the switch rings the person's phone, then calls the customer.

::

    POST /api/v1/calls/dial  {"ring": "heimbuero.anna", "number": "0301234567",
                              "tenant": "mueller" | "business": "12"}
         202 {"id", "tenant", "status": "ringing"}   her phone rings; once she answers the
                                                      customer is called as the business
         400 bad input · 403 not permitted (why, in German) · 404 no such person, phone or
         business · 503 no worker has room (Retry-After)

Theory of operation
-------------------
``ring`` is the plan device to ring first (``person.device`` or ``person``, as a transfer
names it), ``number`` the customer's, ``tenant`` the plan the device is in, or
``business`` a business code (as ``*8<code>#`` dials it: the callee sees that business's
number, its usage report counts the call). The handler checks the input and asks the
supervisor (:meth:`~switch.supervisor.clicktocall.DialDesk.dial`, given as a callable so
this module needs no supervisor), which applies the permission a dialled call gets
(:func:`~switch.call.outbound.decide_click_to_call`), the API user's right to place calls
for the business (``calls.place``: its owner, its assistant), picks a worker and waits
for its answer; every request is audited there. 202 means her phone rings, not that the
customer answered: the call's record (``direction: outbound``, the business's tenant)
shows the rest, on ``/api/v1/calls`` and the event stream. The console's event stream
(``/api/v1/desk/events``, ``call``) carries :func:`outcome_text` of the record, so the
page that placed the call replaces "your phone rings" with what became of it, in German:
"Abgelehnt: Ihr Telefon ist besetzt", "Besetzt: der Kunde telefoniert gerade", …
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiohttp import web

from switch.access.policy import Action, Principal, can
from switch.call.calllog import CallRecord
from switch.web.guard import Access, declare
from switch.web.request import PRINCIPAL, json_error, json_object, json_response

_REF: Final = re.compile(r"^[\w-]{1,40}(?:\.[\w-]{1,40})?$")
_NUMBER: Final = re.compile(r"^\+?[0-9 ()/.-]{2,32}$")
_CODE: Final = re.compile(r"^[0-9]{1,8}$")
RETRY_AFTER_S: Final = 5


_CLASSES: Final = {
    "Internal": "Interne Anrufe",
    "Local": "Ortsgespräche",
    "National": "Inlandsgespräche",
    "Mobile": "Anrufe ins Mobilnetz",
    "International": "Auslandsgespräche",
}
_REASONS: Final[tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...]] = (
    (re.compile(r"^Premium numbers not allowed for (.+)$"),
     lambda m: f"Premium-Nummern (0900, 0137, 118xx) sind für {m[1]} gesperrt"),
    (re.compile(r"^(\w+) calls not allowed for (.+)$"),
     lambda m: f"{_CLASSES.get(m[1], m[1])} sind für {m[2]} nicht erlaubt"),
    (re.compile(r"^Limit reached: (\d+) calls per hour$"),
     lambda m: f"Grenze erreicht: {m[1]} Anrufe pro Stunde"),
    (re.compile(r"^Limit reached: ([\d.]+) international minutes per day$"),
     lambda m: f"Grenze erreicht: {m[1]} Auslandsminuten pro Tag"),
    (re.compile(r"^No business with code (.+)$"), lambda m: f"kein Betrieb mit Kennziffer {m[1]}"),
    (re.compile(r"^No business '(.+)'$"), lambda m: f"kein Betrieb {m[1]!r}"),
    (re.compile(r"^No person '(.+)'$"), lambda m: f"niemand namens {m[1]!r}"),
    (re.compile(r"^No phone (.+)$"), lambda m: f"kein Telefon {m[1]}"),
    (re.compile(r"^Not permitted to place calls for (.+)$"),
     lambda m: f"keine Berechtigung, für {m[1]} anzurufen"),
    (re.compile(r"^Not the service of that business$"),
     lambda m: "das Telefon gehört nicht zum Sekretariat dieses Betriebs"),
    (re.compile(r"^(Number not valid|Not a dialable number)$"),
     lambda m: "keine gültige Rufnummer"),
    (re.compile(r"^No worker has room for the call$"),
     lambda m: "alle Leitungen belegt, bitte gleich noch einmal"),
    (re.compile(r"^The worker (is not reachable|did not answer)$"),
     lambda m: "die Vermittlung antwortet nicht, bitte gleich noch einmal"),
    (re.compile(r"^No free legs$"), lambda m: "alle Leitungen belegt, bitte gleich noch einmal"),
)  # fmt: skip


def german_reason(reason: str) -> str:
    """The switch's reason (English, as the SIP Reason header carries it) in German."""
    for pattern, text in _REASONS:
        match = pattern.match(reason)
        if match is not None:
            return text(match)
    return reason


_BUSY: Final = frozenset({486, 600})
_DECLINED: Final = frozenset({603})
_NOT_ANSWERED: Final = frozenset({408, 480, 487})
_NO_NUMBER: Final = frozenset({404, 484, 604})


def outcome_text(phase: str, record: CallRecord) -> str | None:
    """What became of a call out (click to call) for the person who placed it, in German;
    None while nothing is decided yet. The person's phone rings first (the record's caller
    leg: ``sip_status`` of a call that ended with no leg out), then the customer (the one
    leg of the outbound step)."""
    if phase == "answered":
        return "Verbunden mit dem Kunden"
    if phase != "ended" or record.outcome is None:
        return None
    if record.outcome == "answered":
        return "Gespräch beendet"
    customer = record.legs[-1] if record.legs else None
    if customer is None:  # her phone never answered: nothing went out (switch/worker/originate.py)
        status = record.sip_status or 0
        if status in _BUSY:
            return "Abgelehnt: Ihr Telefon ist besetzt"
        if status in _DECLINED:
            return "Abgelehnt an Ihrem Telefon"
        if status in _NOT_ANSWERED:
            return "Nicht angenommen: Ihr Telefon hat nicht abgenommen"
        return f"Fehlgeschlagen: Ihr Telefon ist nicht erreichbar ({status})"
    status = customer.status or 0
    if record.hung_up_by == "caller" or status == 0:
        return "Abgebrochen: Sie haben aufgelegt, bevor der Kunde abnahm"
    if status in _BUSY:
        return "Besetzt: der Kunde telefoniert gerade"
    if status in _DECLINED:
        return "Abgelehnt: der Kunde hat abgelehnt"
    if status in _NOT_ANSWERED:
        return "Nicht angenommen: der Kunde hat nicht abgenommen"
    if status in _NO_NUMBER:
        return f"Fehlgeschlagen: die Nummer ist nicht erreichbar ({status})"
    return f"Fehlgeschlagen: der Kunde ist nicht erreichbar ({status})"


class Result(Protocol):
    """What the supervisor's DialDesk answers (switch/supervisor/clicktocall.py DialResult)."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def call_id(self) -> str | None: ...
    @property
    def tenant(self) -> str | None: ...


Dial = Callable[..., Awaitable[Result]]


def _text(body: dict[str, object], key: str, pattern: re.Pattern[str]) -> str | None | bool:
    """The field as text (None: absent), False when present but not of the form."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value.strip()):
        return False
    return value.strip()


def clicktocall_routes(dial: Dial) -> list[web.RouteDef]:
    """The route, declared for whoever may place calls (checked per business)."""

    async def place_call(request: web.Request) -> web.Response:
        body = await json_object(
            request,
            "Anruf",
            not_json="der Inhalt ist kein JSON",
            not_object="ein JSON-Objekt wird erwartet",
        )
        if isinstance(body, web.Response):
            return body
        ring = _text(body, "ring", _REF)
        number = _text(body, "number", _NUMBER)
        tenant = _text(body, "tenant", _REF)
        business = _text(body, "business", _CODE)
        if not isinstance(ring, str):
            return json_error(400, 'Anruf: "ring" (wessen Telefon zuerst, z. B. "jan.desk") fehlt')
        if not isinstance(number, str):
            return json_error(
                400, 'Anruf: "number" (die Nummer des Kunden) fehlt oder ist ungültig'
            )
        if tenant is False or business is False:
            return json_error(400, 'Anruf: "tenant" oder "business" ist ungültig')
        if tenant is None and business is None:
            return json_error(400, 'Anruf: "tenant" oder "business" (Kennziffer) angeben')
        who = request.get(PRINCIPAL)
        principal = who if isinstance(who, Principal) else None

        def permits(name: str) -> bool:
            return principal is None or can(principal, Action.PLACE_CALL, name)

        result = await dial(
            ring=ring,
            number=number,
            tenant=tenant or None,
            business=business or None,
            by=principal.name if principal is not None else "open",
            source=request.remote,
            permits=permits,
        )
        if result.status == 202:
            return json_response(
                {"id": result.call_id, "tenant": result.tenant, "status": "ringing"}, status=202
            )
        message = f"Anruf nicht möglich: {german_reason(result.reason)}"
        if result.status == 503:
            return json_error(503, message, headers={"Retry-After": str(RETRY_AFTER_S)})
        status = result.status if result.status in (400, 403, 404) else 403
        return json_error(status, message)

    return [
        declare(
            web.post("/api/v1/calls/dial", place_call),
            Access(Action.PLACE_CALL, Action.PLACE_CALL, denied="may not place calls"),
        )
    ]


__all__ = ["clicktocall_routes", "german_reason", "outcome_text"]
