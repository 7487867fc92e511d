"""What the assistant reads under "Zurückrufen" once a click to call is decided (issue 17):
``outcome_text`` of the call's record, in German, carried by the console's ``call`` event
of a call out (the browser side: tests/switch/desk/test_console_callback.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from switch.access.policy import Scope
from switch.call.calllog import CallRecord, LegRecord
from switch.web.clicktocall import outcome_text
from switch.web.console import DeskBoard
from tests.helpers.desk import load_plans
from tests.helpers.records import make_record


async def no_history(tenant: str, number: str) -> dict[str, Any]:
    return {"calls": [], "messages": [], "contact": None}


def call_out(
    outcome: str | None,
    *,
    sip_status: int | None = None,
    customer: int | None | bool = False,  # False: no leg to the customer
    hung_up_by: str | None = None,
) -> CallRecord:
    legs = []
    if customer is not False:
        leg = LegRecord(1, "out:national", "tel:+49305551234", "heimbuero", False, 0)
        legs = [dataclasses.replace(leg, status=customer)]
    record = make_record(call_id="c2c-1", tenant="mueller", outcome=outcome)
    return dataclasses.replace(record, direction="outbound", legs=legs, sip_status=sip_status,
                               hung_up_by=hung_up_by)  # fmt: skip


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (call_out("cancelled", sip_status=486), "Abgelehnt: Ihr Telefon ist besetzt"),
        (call_out("cancelled", sip_status=603), "Abgelehnt an Ihrem Telefon"),
        (call_out("cancelled", sip_status=480),
         "Nicht angenommen: Ihr Telefon hat nicht abgenommen"),
        (call_out("cancelled", sip_status=503),
         "Fehlgeschlagen: Ihr Telefon ist nicht erreichbar (503)"),
        (call_out("missed", sip_status=480, customer=486), "Besetzt: der Kunde telefoniert gerade"),
        (call_out("missed", sip_status=480, customer=603), "Abgelehnt: der Kunde hat abgelehnt"),
        (call_out("missed", sip_status=480, customer=408),
         "Nicht angenommen: der Kunde hat nicht abgenommen"),
        (call_out("missed", sip_status=480, customer=404),
         "Fehlgeschlagen: die Nummer ist nicht erreichbar (404)"),
        (call_out("missed", sip_status=480, customer=500),
         "Fehlgeschlagen: der Kunde ist nicht erreichbar (500)"),
        (call_out("cancelled", customer=487, hung_up_by="caller"),
         "Abgebrochen: Sie haben aufgelegt, bevor der Kunde abnahm"),
        (call_out("answered", customer=200, hung_up_by="callee"), "Gespräch beendet"),
    ],
)  # fmt: skip
def test_what_became_of_the_call_back(record: CallRecord, expected: str) -> None:
    assert outcome_text("ended", record) == expected


def test_nothing_before_it_is_decided_and_connected_once_the_customer_answers() -> None:
    assert outcome_text("ended", call_out(None)) is None
    assert outcome_text("started", call_out(None)) is None
    assert outcome_text("answered", call_out(None, customer=None)) == "Verbunden mit dem Kunden"


async def test_the_call_event_of_a_call_out_carries_it(tmp_path: Path) -> None:
    board = DeskBoard(load_plans(tmp_path).get, lambda _t: [], no_history)
    async with board.subscribe(Scope(frozenset({"mueller"}))) as events:
        board.observe("ended", call_out("cancelled", sip_status=486))
        board.observe("ended", make_record(tenant="mueller", outcome="missed"))  # a call in
        out = await asyncio.wait_for(events.get(), 2)
        inbound = await asyncio.wait_for(events.get(), 2)
    assert out == ("call", {"call_id": "c2c-1", "tenant": "mueller", "phase": "ended",
                            "answered_by": None, "outcome": "cancelled",
                            "outcome_text": "Abgelehnt: Ihr Telefon ist besetzt"})  # fmt: skip
    assert "outcome_text" not in inbound[1]
