"""Queue members log in, pause, end the pause and log out from their phone (issue 19).

``rufweiche run`` with the Kamailio edge and one queue; anna's desk phone is a SIPp phone
that REGISTERs at the edge with digest auth and dials ``*45`` (log in), ``*47`` (pause),
``*48`` (end the pause) and ``*46`` (log out) through the edge (proxy auth, 407). The
worker takes the codes from her phone (a ``service:`` device of the plan) and the queue
state changes at once, as the HTTP API shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.edge.credentials import add_user
from tests.helpers.edge import needs_kamailio
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp
from tests.helpers.switch import Switch

pytestmark = [pytest.mark.peer, pytest.mark.slow, needs_kamailio, pytest.mark.timeout(100)]
SCENARIO = Path(__file__).parents[1] / "edge" / "scenarios" / "phone_call_out.xml"
PLAN = """
tenant: tischlerei
name: Tischlerei Test
numbers: ["+49 30 1234560"]
service:
  anna: {name: Anna, devices: {desk: "sip:anna@office"}}
rules:
  - {name: queue, then: [{queue: heimbuero}]}
"""
SETTINGS = """
workers: 1
edge: {{domain: office, secrets_file: "{secrets}", trunk_sources: []}}
queues:
  heimbuero:
    members:
      anna: {{uri: "sip:anna@office", user: anna, logged_in: false}}
"""


def dial(tmp_path: Path, edge_port: int, code: str, name: str) -> Sipp:
    """Anna's phone: REGISTER, INVITE ``code`` with proxy auth, BYE after 100 ms."""
    return Sipp(
        tmp_path,
        name,
        str(SCENARIO),
        [
            f"{LOOPBACK}:{edge_port}",
            *("-key", "user", "anna", "-key", "domain", "office"),
            *("-au", "anna", "-ap", "pw-anna", "-s", code),
            *("-d", "100", "-m", "1", "-timeout", "20", "-timeout_error"),
        ],
    )


def test_member_codes_from_her_phone_change_her_queue_state(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "tischlerei.yaml").write_text(PLAN, encoding="utf-8")
    secrets = tmp_path / "secrets.yaml"
    add_user(secrets, "anna", "pw-anna", realm="office")
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS.format(secrets=secrets), encoding="utf-8")
    switch = Switch(tmp_path, plans, "--settings", str(settings))
    seen: list[tuple[str, str]] = []
    with running(switch.start()):
        switch.wait_until(lambda: switch.health()["workers_up"] == 1, 20, "the worker")

        def status() -> str:
            members = switch.get("/api/v1/queues")["queues"]["heimbuero"]["members"]
            return str(members["anna"]["status"])

        seen.append(("start", status()))
        for code in ("*45", "*47", "*48", "*46"):
            phone = dial(tmp_path, switch.sip_port, code, f"code{code[1:]}")
            with running(phone.start()):
                assert phone.wait(20) == 0, phone.diagnostics() + switch.output()[-3000:]
            assert any("ANSWERED" in line for line in phone.log_lines()), phone.diagnostics()
            switch.wait_until(lambda: status() != seen[-1][1], 5, f"anna's state after {code}")
            seen.append((code, status()))
    assert seen == [
        ("start", "logged_out"),
        ("*45", "available"),
        ("*47", "paused"),
        ("*48", "available"),
        ("*46", "logged_out"),
    ]
