"""``rufweiche run`` with a users file in its data directory: login is required, the
loopback probes stay open, tokens made by ``rufweiche users`` work (the real process)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from switch.cli import main as cli
from tests.helpers.processes import REPO

pytestmark = pytest.mark.peer  # a real switch process with a pjsua2 worker


def status_of(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_run_with_a_users_file_requires_login(tmp_path: Path, make_switch: Any) -> None:
    users = ["users", "--users-file", str(tmp_path / "var" / "users.yaml")]
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [*users, "add", "otto", "--role", "owner", "--tenant", "tischlerei-mueller"],
        input="a long password\n" * 2,
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, [*users, "token", "create", "otto"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]

    switch = make_switch(REPO / "dialplans" / "tischlerei-mueller.yaml")
    assert status_of(switch.url + "/healthz") == 200  # loopback: open (started = ready)
    assert status_of(switch.url + "/metrics") == 200
    assert status_of(switch.url + "/api/v1/calls") == 401
    assert status_of(switch.url + "/api/v1/presence") == 401
    assert status_of(switch.url + "/dashboard") == 302
    assert status_of(switch.url + "/api/v1/calls", token) == 200
    assert status_of(switch.url + "/api/v1/calls?tenant=elektro-schulz", token) == 404
    assert status_of(switch.url + "/api/v1/presence", "rwt_wrong") == 401
