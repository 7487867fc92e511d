"""The console's live side in-process (pure parts, issue 18): a card goes only to consoles
whose login serves the business; the instructions are rendered without any HTML of theirs."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from switch.access.policy import Scope
from switch.call.calllog import LegRecord
from switch.web.console import DeskBoard, render_markdown
from tests.helpers.desk import load_plans
from tests.helpers.records import make_record


async def no_history(tenant: str, number: str) -> dict[str, Any]:
    return {"calls": [{"started_at": "2026-12-01T10:00:00+00:00", "outcome": "missed"}],
            "messages": [], "contact": {"name": "Frau Jürgens", "note": "Stammkundin"}}  # fmt: skip


def ringing_service(tenant: str) -> Any:
    leg = LegRecord(0, "heimbuero.anna", "sip:anna@x", "heimbuero", True, 0)
    return dataclasses.replace(make_record(tenant=tenant, call_id=f"ring-{tenant}"), legs=[leg])


async def test_a_card_reaches_only_the_consoles_of_that_business(tmp_path: Path) -> None:
    plans = load_plans(tmp_path)
    board = DeskBoard(plans.get, lambda _t: [], no_history)
    async with (
        board.subscribe(Scope(frozenset({"mueller"}))) as mine,
        board.subscribe(Scope(frozenset({"schmidt"}))) as other,
    ):
        board.observe("started", dataclasses.replace(make_record(tenant="mueller"), legs=[]))
        board.observe("started", ringing_service("mueller"))
        kind, card = await asyncio.wait_for(mine.get(), 2)
        board.observe("ended", ringing_service("mueller"))
        ended_kind, _ended = await asyncio.wait_for(mine.get(), 2)
        assert other.empty()
    assert kind == "card"
    assert ended_kind == "call"
    assert card["greeting"] == "Tischlerei Müller, Sekretariat, guten Tag"
    assert card["caller_name"] == "Frau Jürgens"
    assert card["contact_note"] == "Stammkundin"
    assert card["last_calls"][0]["outcome"] == "missed"
    assert board.ringing(Scope(None)) == []  # ended: no card left
    await board.close()


async def test_default_greeting_in_the_plans_language(tmp_path: Path) -> None:
    plans = load_plans(tmp_path)
    board = DeskBoard(plans.get, lambda _t: [], no_history)
    async with board.subscribe(Scope(None)) as queue:
        board.observe("started", ringing_service("schmidt"))
        _kind, card = await asyncio.wait_for(queue.get(), 2)
    assert card["greeting"] == "Elektro Schmidt, good day"  # language: en
    assert card["language"] == "en"


def test_markdown_is_rendered_safely() -> None:
    html = render_markdown(
        '**Angebote** nur *schriftlich*\n- a <b>\n- "x" & y\n\n<script>x</script>'
    )
    assert html == (
        "<p><strong>Angebote</strong> nur <em>schriftlich</em></p>"
        "<ul><li>a &lt;b&gt;</li><li>&quot;x&quot; &amp; y</li></ul>"
        "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    )
    assert render_markdown(None) == ""
    assert render_markdown("- only a list") == "<ul><li>only a list</li></ul>"
