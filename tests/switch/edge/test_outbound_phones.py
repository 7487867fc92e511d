"""Phones at the edge call out: the real Kamailio edge, a real worker, SIPp phones and trunk.

An authenticated phone's INVITE to an outside number reaches a worker, which applies the
plan's permission classes and calls the SIPp trunk as the business; an unauthenticated one
is refused at the edge and reaches neither worker nor trunk. 110/112 go out even when the
dispatcher's maxload says the only worker is full and the plan rejects everything: the edge
takes them round robin past maxload, the worker keeps legs for them (``--emergency-reserve``,
settings ``emergency_reserve``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from switch.call.admission import calls_per_worker
from switch.edge.credentials import add_user
from tests.helpers.edge import EdgeFactory, needs_kamailio
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.rawsip import Reply, sip_request
from tests.helpers.sipp import Sipp, start_bound
from tests.helpers.transfer import BUSINESS_E164, mueller_plan
from tests.helpers.worker import WorkerProcess, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.slow, needs_kamailio, pytest.mark.timeout(60)]

SCENARIO = Path(__file__).parent / "scenarios" / "phone_call_out.xml"
NATIONAL = "030555123"


def strict_plan(tmp_path: Path) -> Path:
    """Rules that reject every call, no outbound class for anyone but jan (national)."""
    return write_plan(
        tmp_path / "plan.yaml",
        mueller_plan(
            None,
            people="""
jan: {devices: {desk: "sip:jan@office"}}
anna: {devices: {desk: "sip:anna@office"}}
""",
            more="outbound: {allow: [], people: {jan: [national]}}",
            rules="  - {name: closed, then: reject}",
        ),
    )


def phone(tmp_path: Path, edge_port: int, name: str, user: str, dialled: str, hold_ms: int) -> Sipp:
    return Sipp(
        tmp_path,
        name,
        str(SCENARIO),
        [
            f"{LOOPBACK}:{edge_port}",
            *("-key", "user", user, "-key", "domain", "office"),
            *("-au", user, "-ap", f"pw-{user}", "-s", dialled),
            *("-d", str(hold_ms), "-m", "1", "-timeout", "20", "-timeout_error"),
        ],
    )


async def start_pool(
    tmp_path: Path, start_edge: EdgeFactory, trunk: Sipp, reserve: int
) -> tuple[WorkerProcess, int]:
    """Start the ``trunk`` (until bound), a worker on :func:`strict_plan` that calls out
    through it with ``reserve`` legs kept for emergency calls, and the edge in front of it
    (jan and anna its phone users); the worker (the caller stops it) and the edge's port."""
    start_bound(trunk)
    secrets = tmp_path / "secrets.yaml"
    for user in ("jan", "anna"):
        add_user(secrets, user, f"pw-{user}", realm="office")
    worker = WorkerProcess(
        tmp_path,
        [strict_plan(tmp_path)],
        trunk=trunk.address,
        extra=("--emergency-reserve", str(reserve)),
    )
    worker.start()
    edge = await start_edge(
        secrets_file=secrets,
        workers=[{"uri": f"sip:{LOOPBACK}:{worker.port}", "maxload": calls_per_worker(reserve)}],
        public_numbers=[BUSINESS_E164],
        worker_rate=100,
    )
    return worker, edge.settings.listen_port


def status(reply: Reply | None) -> int | None:
    return None if reply is None else reply.status


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


async def test_unauthenticated_invites_to_outside_numbers_never_leave(
    tmp_path: Path, start_edge: EdgeFactory
) -> None:
    trunk = Sipp(tmp_path, "trunk", "uas_answer.xml", ["-m", "1"])
    with running(trunk):
        worker, port = await start_pool(tmp_path, start_edge, trunk, 0)
        with running(worker):
            edge = (LOOPBACK, port)
            for number in (NATIONAL, "112", "+4915112345678"):
                ruri = f"sip:{number}@office"
                foreign = sip_request(edge, "INVITE", ruri, timeout=2.0)
                assert status(foreign) == 403, foreign
                # One of our users' From but no credentials: challenged, never relayed.
                ours = sip_request(edge, "INVITE", ruri, from_uri="sip:jan@office", timeout=2.0)
                assert status(ours) == 407, ours
                # A guessed digest response never gets further than the challenge.
                forged = (
                    'Proxy-Authorization: Digest username="jan", realm="office", nonce="x", '
                    f'uri="{ruri}", response="{"0" * 32}"'
                )
                guess = sip_request(
                    edge, "INVITE", ruri, from_uri="sip:jan@office", extra=forged, timeout=2.0
                )
                assert status(guess) in (401, 403, 407), guess
            await asyncio.sleep(0.5)
            assert worker.records("started") == []  # nothing reached the worker
            assert trunk.received("INVITE") == []  # nothing reached the trunk
            assert worker.alive()


async def test_112_goes_out_while_the_only_worker_is_full_and_the_plan_rejects_all(
    tmp_path: Path, start_edge: EdgeFactory
) -> None:
    trunk = Sipp(tmp_path, "trunk", "uas_answer.xml", ["-m", "2"])
    with running(trunk):
        worker, port = await start_pool(tmp_path, start_edge, trunk, 1)
        jan = phone(tmp_path, port, "jan", "jan", NATIONAL, 9000)
        probe = phone(tmp_path, port, "probe", "anna", NATIONAL, 100)
        sos = phone(tmp_path, port, "sos", "anna", "112", 800)
        with running(worker, jan, probe, sos):
            # A registered desk phone calls out: the worker holds its one call (maxload 1).
            jan.start()
            wait_until(lambda: len(trunk.received("INVITE")) == 1)
            first = trunk.received("INVITE")[0]
            assert first.startswith("INVITE sip:+4930555123@")
            assert re.search(rf"^From: .*<sip:{re.escape(BUSINESS_E164)}@", first, re.M)
            wait_until(lambda: "ANSWERED" in "\n".join(jan.log_lines()))
            # Every worker is full: an ordinary call is turned away at the edge.
            probe.start()
            assert probe.wait(20) == 0, probe.diagnostics()
            busy = probe.received("SIP/2.0 503")
            assert len(busy) == 1
            assert "All workers busy" in busy[0]
            # 112 from anna (no outbound class at all, rules reject everything) goes out.
            sos.start()
            assert sos.wait(20) == 0, sos.diagnostics()
            assert "ANSWERED" in "\n".join(sos.log_lines())
            invites = trunk.received("INVITE")
            assert len(invites) == 2
            emergency = invites[1]
            assert emergency.startswith("INVITE sip:112@")
            assert re.search(rf"^From: .*<sip:{re.escape(BUSINESS_E164)}@", emergency, re.M)
            assert re.search(
                rf"^P-Asserted-Identity: <sip:{re.escape(BUSINESS_E164)}@", emergency, re.M
            )
            assert jan.wait(20) == 0, jan.diagnostics()
            records = worker.records("ended")
            sos_record = next(r for r in records if r["called"] == "112")
            assert sos_record["direction"] == "outbound"
            assert sos_record["tenant"] == "mueller"
            assert sos_record["outcome"] == "answered"
            assert worker.alive()
