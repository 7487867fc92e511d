"""Two full nodes (``python -m switch run``: supervisor and worker each) on loopback, sharing
one PostgreSQL schema for their records and one dial-plan directory; real SIPp calls.

Shown: calls through both nodes land in one database, each row with its node; the API of
either node and ``rufweiche report``/``privacy`` see both; a broken edit of the shared plans
is refused by both nodes, which keep their last good set and say so on /healthz; killing
node A (SIGKILL) mid-call loses only A's call — B's call goes on — and A's restart closes
A's record as ``aborted``. (PostgreSQL restarted under the writers is
tests/switch/records/test_pg_restart.py, on a private server.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.helpers.pg import DSN, run_sync
from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import REPO, running
from tests.helpers.sipp import BUSINESS_E164, Sipp
from tests.helpers.switch import Switch, plan_text, write

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(120)]


def rufweiche(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m switch ARGS`` from the repository, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "switch", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


def caller(tmp_path: Path, switch: Switch, name: str, hold_ms: int, number: str) -> Sipp:
    return Sipp(
        tmp_path,
        name,
        "uac_via_edge.xml",  # the node's edge record-routes
        [
            f"{LOOPBACK}:{switch.sip_port}",
            "-s",
            BUSINESS_E164,
            "-key",
            "caller",
            number,
            "-m",
            "1",
            "-d",
            str(hold_ms),
            "-timeout",
            "40",
        ],
    )


def rows(schema: str) -> dict[str, dict[str, Any]]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(DSN)
        try:
            return list(await conn.fetch(f'SELECT call_id, node, outcome FROM "{schema}".calls'))
        finally:
            await conn.close()

    return {r["call_id"]: dict(r) for r in run_sync(fetch())}


def dial_plans(switch: Switch, key: str) -> Any:
    return switch.health()["detail"]["dial_plans"][key]


def node(tmp_path: Path, plans: Path, schema: str, name: str) -> Switch:
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    settings = home / "settings.yaml"
    settings.write_text(
        f"records:\n  backend: postgresql\n  dsn: {DSN}\n  schema: {schema}\n  node: {name}\n"
        # the callers stand for the trunk (nothing is trusted by default, issue 14)
        'edge: {trunk_sources: ["127.0.0.1/32"]}\n'
    )
    return Switch(home, plans, "--settings", str(settings))


def test_two_nodes_share_records_and_plans_and_a_killed_node_costs_only_its_call(
    tmp_path: Path, pg_schema: str
) -> None:
    plans = tmp_path / "plans"  # the shared settings directory (NFS, a git checkout, ...)
    plans.mkdir()
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", "2", "-timeout", "40"])
    write(plans / "a.yaml", plan_text(f"sip:desk@{desk.address}"))
    a = node(tmp_path, plans, pg_schema, "node-a")
    b = node(tmp_path, plans, pg_schema, "node-b")
    started: list[Switch] = []
    try:
        started += [a.start(), b.start()]
        call_a = caller(tmp_path, a, "caller-a", 200, "+491715550101")
        call_b = caller(tmp_path, b, "caller-b", 200, "+491715550102")
        with running(desk.start()):
            with running(call_a.start()):
                assert call_a.wait(20) == 0, call_a.diagnostics() + a.output()
            with running(call_b.start()):
                assert call_b.wait(20) == 0, call_b.diagnostics() + b.output()

        # One database, both nodes; either node's API shows both.
        a.wait_until(
            lambda: [c for c in a.calls() if c["outcome"] == "answered"][1:], 10, "both calls"
        )
        found = a.calls()
        assert sorted(c["node"] for c in found) == ["node-a", "node-b"]
        assert sorted(c["node"] for c in b.calls()) == ["node-a", "node-b"]
        settings_a = tmp_path / "node-a" / "settings.yaml"
        month = found[0]["started_at"][:7]
        report = rufweiche(
            "report", "--month", month, "--format", "csv", "--timezone", "UTC",
            "--settings", str(settings_a),
        )  # fmt: skip
        assert report.returncode == 0, report.stderr
        assert report.stdout.splitlines()[1].startswith("test-tenant,2,2,")
        exported = rufweiche(
            "privacy", "export", "--tenant", "test-tenant", "--person", "jan",
            "--settings", str(settings_a),
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert sorted(c["node"] for c in json.loads(exported.stdout)["calls"]) == [
            "node-a",
            "node-b",
        ]

        # A broken edit of the shared plans: both keep their last good set and say so.
        write(plans / "a.yaml", plan_text("sip:desk@x").replace("timeout", "timout"))
        for n in (a, b):
            problems = n.wait_until(partial(dial_plans, n, "problems"), 10, "problems")
            assert any("did you mean 'timeout'" in p for p in problems), problems
            assert n.health()["ready"]
        write(plans / "a.yaml", plan_text("sip:desk@127.0.0.1:9"))
        for n in (a, b):
            n.wait_until(partial(dial_plans, n, "ok"), 10, "fixed")

        # Node A is killed mid-call; node B's call goes on.
        desk = Sipp(tmp_path, "desk-long", "uas_answer.xml", ["-m", "2", "-timeout", "40"])
        write(plans / "a.yaml", plan_text(f"sip:desk@{desk.address}"))
        for n in (a, b):
            n.wait_until(partial(dial_plans, n, "ok"), 10, "reload")
        time.sleep(1.5)  # both nodes (and their workers) reload the plan
        long_a = caller(tmp_path, a, "long-a", 20000, "+491715550103")
        long_b = caller(tmp_path, b, "long-b", 4000, "+491715550104")
        with running(desk.start(), long_a.start(), long_b.start()):
            a.wait_until(
                lambda: [r for r in rows(pg_schema).values() if r["outcome"] is None][1:],
                10,
                "both long calls up",
            )
            time.sleep(0.5)
            assert a.proc is not None
            os.killpg(a.proc.pid, signal.SIGKILL)
            a.proc.wait(10)
            assert long_b.wait(30) == 0, long_b.diagnostics() + b.output()
        # B's call ended answered; A's is still open: nobody has closed it yet.
        by_node = {(r["node"], r["outcome"]) for r in rows(pg_schema).values()}
        assert ("node-b", "answered") in by_node
        open_a = [
            k for k, r in rows(pg_schema).items() if r["node"] == "node-a" and not r["outcome"]
        ]
        assert len(open_a) == 1
        # Node A comes back (systemd Restart=on-failure): it closes its own call as aborted.
        again = node(tmp_path, plans, pg_schema, "node-a")
        started.append(again.start())
        again.wait_until(lambda: rows(pg_schema)[open_a[0]]["outcome"] == "aborted", 10, "aborted")
        outcomes = sorted((r["node"], r["outcome"]) for r in rows(pg_schema).values())
        assert outcomes == [
            ("node-a", "aborted"),
            ("node-a", "answered"),
            ("node-b", "answered"),
            ("node-b", "answered"),
        ]
    finally:
        for n in started:
            if n.proc is not None and n.proc.poll() is None:
                n.stop()
