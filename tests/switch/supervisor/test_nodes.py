"""Two Rufweiche nodes behind one edge: stopping one loses no new call.

The edge is the standalone ``python -m switch.edge`` (as on a host of its own); each
node is ``rufweiche run`` with its workers on fixed addresses (``workers_listen``) and
no edge of its own. SIGTERM on one node drains it: its workers answer new INVITEs with
503 and the edge moves the calls to the other node.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import REPO, running, stop_process
from tests.helpers.rawsip import sip_options
from tests.helpers.sipp import Sipp, load
from tests.helpers.switch import Switch, plan_text

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(120)]


def node(tmp_path: Path, name: str, plans: Path, workers_port: int) -> Switch:
    settings = tmp_path / f"{name}.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "workers": 2,
                "edge_mode": "off",
                "workers_listen": f"{LOOPBACK}:{workers_port}",
                "grace_seconds": 5,
            }
        )
    )
    workdir = tmp_path / name
    workdir.mkdir()
    switch = Switch(workdir, plans, "--settings", str(settings))
    switch.sip_port = workers_port  # the worker's address; the edge is the public one
    return switch


def answered_calls(workdir: Path) -> int:
    with sqlite3.connect(workdir / "var" / "calls.sqlite3") as db:
        (count,) = db.execute("SELECT count(*) FROM calls WHERE outcome = 'answered'").fetchone()
    return int(count)


def test_stopping_one_node_loses_no_new_call(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    desk = Sipp(tmp_path, "desk", "uas_answer.xml", ["-m", "200", "-timeout", "60"])
    (plans / "test.yaml").write_text(plan_text(f"sip:desk@{desk.address}", "two nodes"))
    # Each node: 2 workers on PORT and PORT+1, 4 bridged calls; the load below needs
    # about 1-2 at a time, so one node alone can carry it.
    ports = {"node1": free_port(span=2, even=True), "node2": free_port(span=2, even=True)}
    edge_port = free_port()
    edge_settings = tmp_path / "edge.yaml"
    edge_settings.write_text(
        yaml.safe_dump(
            {
                "listen": f"{LOOPBACK}:{edge_port}",
                "workers": [
                    {"uri": f"sip:{LOOPBACK}:{p + i}", "maxload": 2}
                    for p in ports.values()
                    for i in (0, 1)
                ],
                "worker_tries": 4,  # every worker may be tried for one call
                "trunk_sources": ["127.0.0.0/8"],
                "public_numbers": ["+49301234560"],
                "run_dir": str(tmp_path / "edge"),
                "db_path": str(tmp_path / "edge" / "edge.db"),
            }
        )
    )
    edge_log = (tmp_path / "edge.log").open("wb")
    edge = subprocess.Popen(
        [sys.executable, "-m", "switch.edge", "--settings", str(edge_settings)],
        cwd=REPO,
        stdout=edge_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    nodes = {name: node(tmp_path, name, plans, port) for name, port in ports.items()}
    try:
        for switch in nodes.values():
            switch.start()
        deadline = time.monotonic() + 15
        while sip_options(edge_port) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # the dispatcher's OPTIONS probes mark both nodes' workers active
        calls = load(tmp_path, edge_port, 30, 3, 300, "uac_via_edge.xml")
        with running(desk.start(), calls.start()):
            time.sleep(4)
            node2 = nodes["node2"].proc
            assert node2 is not None
            node2.send_signal(signal.SIGTERM)
            assert node2.wait(20) == 0, "node 2 drains its calls and stops cleanly"
            calls.wait(60)
        totals = calls.totals()
        assert totals == {"ok": 30, "failed": 0}, calls.diagnostics()
        carried = {name: answered_calls(tmp_path / name) for name in nodes}
        assert carried["node1"] + carried["node2"] == 30
        assert carried["node2"] > 0, "both nodes carried calls"
        assert carried["node1"] > 15, "node 1 took over when node 2 left"
    finally:
        for switch in nodes.values():
            if switch.proc is not None and switch.proc.poll() is None:
                switch.stop()
        stop_process(edge)
        edge_log.close()
