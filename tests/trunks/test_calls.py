"""Calls over the trunk, in network namespaces: a customer calls the business's number (the
provider delivers it as ``49…``), the plan forwards it to Jan's mobile through the same
trunk, the provider answers the switch's INVITE with 407 and checks the identity headers
like sipgate (From = SIP-ID, PPI ``49…`` without plus, only own numbers without CLIP no
screening), and the "mobile network" (SIPp) shows what arrived.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.trunks.conftest import BUSINESS, CALLER, CUSTOMER, MOBILE, World

SCENARIOS = Path(__file__).parent / "scenarios"

pytestmark = [pytest.mark.peer, pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(100)]


def call_in(world: World, did: str, *, mobile_ends: bool = False) -> tuple[int, str, str]:
    """Customer calls ``did``; returns SIPp's exit code, the mobile's and caller's messages.
    With ``mobile_ends`` the mobile's SIPp must also finish its scenario (ACK and BYE
    received, 200 sent) within 15 s."""
    scenario = str(SCENARIOS / "mobile_answer.xml")
    mobile = world.sipp(MOBILE, scenario, ["-m", "1", "-timeout", "25"], "mobile")
    customer = world.sipp(
        CUSTOMER,
        "uac_via_edge.xml",
        ["-s", did, "-key", "caller", CALLER, "-d", "500", "-m", "1", "-timeout", "20",
         f"{'100.64.0.1'}:5060"],
        "customer",
    )  # fmt: skip
    mobile.start()
    customer.start()
    try:
        code = customer.wait(25)
        if mobile_ends:
            assert mobile.wait(15) == 0, mobile.diagnostics() + world.output()[-3000:]
    finally:
        customer.stop()
        mobile.stop()
    return code, mobile.message_text() if mobile.messages.exists() else "", customer.message_text()


def invite_of(messages: str) -> str:
    match = re.search(r"INVITE sip:.*?(?=\r?\n\r?\n)", messages, re.S)
    assert match, messages[-3000:]
    return match.group(0)


def call_record(world: World) -> dict[str, Any]:
    """The one call record, once it has an outcome (the worker writes it at the end)."""

    def ended() -> dict[str, Any] | None:
        db = world.tmp / "var" / "calls.sqlite3"
        if not db.exists():
            return None
        with closing(sqlite3.connect(db)) as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute("SELECT * FROM calls WHERE outcome IS NOT NULL")]
        return rows[0] if rows else None

    return dict(world.wait(ended, 15, "call record with an outcome"))


def registered(world: World) -> None:
    world.wait(lambda: world.trunk().get("registered"), 30, "trunk registered")


def test_did_in_49_format_reaches_the_mobile_with_the_business_identity(world: World) -> None:
    provider = world.start_provider(clip=False)
    world.start_switch(clip_no_screening=False)
    registered(world)
    code, mobile, _ = call_in(world, BUSINESS.removeprefix("+"), mobile_ends=True)
    assert code == 0, world.output()[-4000:] + provider.text()[-3000:]
    invite = invite_of(mobile)
    assert "provider: 407 to INVITE 491701234567" in provider.text()  # challenged, answered
    # The INVITE with credentials carries CSeq + 1 (RFC 3261 §22.2: a UAC MUST increment
    # it; providers answer a repeated CSeq with 482 "merged request"). The worker's ACK
    # and BYE still carry its own numbering: the edge's dialog module raises them too.
    challenged = re.search(r"407 to INVITE 491701234567 from \S+ cseq (\d+)", provider.text())
    authed = re.search(r"INVITE 491701234567 authenticated cseq (\d+)", provider.text())
    assert challenged, provider.text()[-2000:]
    assert authed, provider.text()[-2000:]
    cseq = int(re.search(r"^CSeq: (\d+) INVITE", invite, re.M).group(1))  # type: ignore[union-attr]
    assert int(authed.group(1)) == int(challenged.group(1)) + 1 == cseq
    ack = re.search(r"^ACK sip:.*?^CSeq: (\d+) ACK", mobile, re.S | re.M)
    bye = re.search(r"^BYE sip:.*?^CSeq: (\d+) BYE", mobile, re.S | re.M)
    assert ack, mobile[-3000:]
    assert int(ack.group(1)) == cseq
    assert bye, mobile[-3000:]
    assert int(bye.group(1)) > cseq
    record = call_record(world)
    assert (record["outcome"], record["hung_up_by"]) == ("answered", "caller"), record
    assert invite.startswith("INVITE sip:491701234567@")  # the number in the trunk's format
    assert re.search(r"^From: .*<sip:1234567t0@100\.64\.0\.1>", invite, re.M), invite
    # No CLIP no screening: the business's own number, the caller in the display name.
    assert re.search(r"^P-Preferred-Identity: <sip:4923319876540@100\.64\.0\.1>", invite, re.M)
    assert re.search(r'^From: "Tischlerei Mueller: \+491715550100"', invite, re.M), invite
    assert re.search(
        r"^Diversion: <sip:4923319876540@100\.64\.0\.1>;reason=unconditional", invite, re.M
    )
    assert "127.0.0.1" not in "\n".join(
        line for line in invite.splitlines()
        if line.split(":", 1)[0] in ("From", "P-Preferred-Identity", "Diversion", "History-Info")
    )  # fmt: skip


def test_clip_no_screening_presents_the_original_caller(world: World) -> None:
    provider = world.start_provider(clip=True)
    world.start_switch(clip_no_screening=True)
    registered(world)
    code, mobile, _ = call_in(world, BUSINESS.removeprefix("+"))
    assert code == 0, world.output()[-4000:] + provider.text()[-3000:]
    invite = invite_of(mobile)
    assert re.search(r"^P-Preferred-Identity: <sip:491715550100@100\.64\.0\.1>", invite, re.M)
    assert re.search(r"^From: .*<sip:1234567t0@100\.64\.0\.1>", invite, re.M), invite


def test_the_provider_refuses_a_foreign_caller_without_clip_booked(world: World) -> None:
    """The line has no CLIP no screening booked but the trunk says it has: the provider
    answers 403 (what real ones do, TRUNKS.md §1.8 item 5) and the mobile never rings."""
    provider = world.start_provider(clip=False)
    world.start_switch(clip_no_screening=True)
    registered(world)
    _, mobile, _ = call_in(world, BUSINESS.removeprefix("+"))
    assert "INVITE sip:" not in mobile
    assert "provider: INVITE 491701234567 authenticated cseq" in provider.text()


def test_unknown_did_gets_404_and_a_masked_log_line(world: World) -> None:
    world.start_provider()
    world.start_switch()
    registered(world)
    code, _, customer = call_in(world, "4923319876599")
    assert code != 0
    assert re.search(r"SIP/2\.0 404", customer), customer[-2000:]
    log = world.output()
    assert "unknown number +4923...99, 404" in log, log[-3000:]
    assert "4923319876599" not in log
