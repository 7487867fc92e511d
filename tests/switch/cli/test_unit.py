"""The systemd unit of a node: what ``rufweiche install-unit`` writes, the shipped copy in
dist/, and ``systemd-analyze verify`` on it (Debian package ``systemd``)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from switch.cli import main
from switch.cli.unit import SYSUSERS, default_command, unit_text, wait_ready

DIST = Path(__file__).parents[3] / "dist"


def service(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_the_shipped_files_are_what_the_command_writes() -> None:
    assert (DIST / "rufweiche.service").read_text() == unit_text(command="/usr/bin/rufweiche")
    assert (DIST / "rufweiche.sysusers").read_text() == SYSUSERS


def test_the_unit_is_hardened_and_restarts() -> None:
    unit = service(unit_text(command="/usr/bin/rufweiche", node="node-b", http="127.0.0.1:8081"))
    s = unit["Service"]
    assert s["User"] == "rufweiche"
    assert s["ProtectSystem"] == "strict"
    assert s["NoNewPrivileges"] == "yes"
    assert s["PrivateTmp"] == "yes"
    assert s["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert s["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    # rtpengine's media threads may run at SCHED_RR up to its default priority, no higher
    assert (s["RestrictRealtime"], s["LimitRTPRIO"]) == ("no", "10")
    assert s["ReadWritePaths"] == "/var/lib/rufweiche"
    assert s["Restart"] == "on-failure"
    assert s["StandardOutput"] == "journal"
    assert "--settings /etc/rufweiche/settings-node-b.yaml" in s["ExecStart"]
    assert "--data-dir /var/lib/rufweiche/node-b" in s["ExecStart"]
    assert s["ExecStartPost"].endswith(
        "wait-ready --url http://127.0.0.1:8081/healthz --timeout 60"
    )


def test_install_unit_writes_the_unit_and_the_user(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["install-unit", "--root", str(tmp_path), "--node", "a"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "etc/systemd/system/rufweiche-a.service").is_file()
    assert (tmp_path / "usr/lib/sysusers.d/rufweiche.conf").read_text() == SYSUSERS
    bad = CliRunner().invoke(main, ["install-unit", "--root", str(tmp_path), "--node", "a/b"])
    assert bad.exit_code == 2


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    return subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60
    )


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "rufweiche-node-a.service"
    unit.write_text(unit_text(command=default_command(), node="node-a"))
    done = verify(unit)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    # The check can fail: a misspelt key is reported.
    bad = tmp_path / "rufweiche-bad.service"
    bad.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key 'NoNewPrivilege'" in verify(bad).stderr


class _Health(BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self) -> None:
        _Health.calls += 1
        self.send_response(200 if _Health.calls >= 3 else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_wait_ready_polls_healthz_until_200() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/healthz"
        assert wait_ready(url, timeout_s=10, interval_s=0.05)
        assert _Health.calls == 3
    finally:
        server.shutdown()
        server.server_close()
    assert not wait_ready(url, timeout_s=0.2, interval_s=0.05)


def test_a_node_whose_database_is_away_counts_as_started() -> None:
    from switch.cli.unit import started

    assert started(200, b"")
    assert started(503, b'{"live": true, "workers_up": 1, "database_writable": false}')
    assert not started(503, b'{"live": true, "workers_up": 0}')
    assert not started(503, b"not json")
