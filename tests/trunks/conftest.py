"""A provider and a switch in network namespaces (tests/trunks/netns.py), for the trunk tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import REPO, stop_process, wait_alive
from tests.helpers.sipp import Sipp
from tests.trunks.netns import CUSTOMER, MOBILE, PROVIDER, SWITCH, Net
from tests.trunks.provider import Provider, ProviderConfig

BUSINESS = "+4923319876540"
MOBILE_NUMBER = "+491701234567"
CALLER = "01715550100"  # the customer, national format as easybell/sipgate send it

PLAN = f"""
tenant: mueller
name: Tischlerei Mueller
numbers: ["{BUSINESS}"]
people:
  jan:
    name: Jan
    devices: {{mobile: "tel:{MOBILE_NUMBER}"}}
rules:
  - name: always the mobile
    then: [{{ring: jan, timeout: 20s}}]
"""


def need_root() -> None:
    if os.geteuid() != 0 or shutil.which("kamailio") is None or shutil.which("sipp") is None:
        pytest.skip("needs root (ip netns), kamailio and sipp")


class World:
    """The provider, the mobile network's SIPp and the switch, each in its namespace."""

    def __init__(self, tmp: Path, net: Net) -> None:
        self.tmp, self.net = tmp, net
        self.switch_log = tmp / "switch.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.provider: Provider | None = None
        self.http = "127.0.0.1:18080"

    def start_provider(self, **kw: Any) -> Provider:
        config = ProviderConfig(address=PROVIDER, pbx=SWITCH, mobile=f"{MOBILE}:5060", **kw)
        self.provider = Provider(self.net.provider, self.tmp, config).start()
        return self.provider

    def start_switch(self, password: str = "geheim-42", **trunk: Any) -> None:
        secrets = self.tmp / "secrets.yaml"
        secrets.write_text(
            json.dumps({"realm": "office", "users": {}, "trunks": {"sipgate": password}})
        )
        os.chmod(secrets, 0o600)
        plans = self.tmp / "plans"
        plans.mkdir(exist_ok=True)
        (plans / "mueller.yaml").write_text(PLAN, encoding="utf-8")
        account = {
            "name": "sipgate",
            "profile": "sipgate",
            "registrar": PROVIDER,
            "username": "1234567t0",
            "realm": "provider.test",
            "expires": 10,  # below the provider's Min-Expires 15: 423 first
            "retry_interval": 10,
            "keepalive_interval": 30,
            "numbers": [{"prefix": BUSINESS, "tenant": "mueller"}],
            **trunk,
        }
        settings = {
            "edge_mode": "managed",
            "grace_seconds": 1,
            "edge": {"secrets_file": str(secrets)},
            "trunks": {"timer_interval": 1, "poll_interval": 1, "accounts": [account]},
        }
        path = self.tmp / "settings.yaml"
        path.write_text(json.dumps(settings), encoding="utf-8")
        cmd = self.net.exec(
            self.net.switch, sys.executable, "-m", "switch", "run", "--settings", str(path),
            "--dialplans", str(plans), "--sip", f"{SWITCH}:5060", "--http", self.http,
            "--data-dir", str(self.tmp / "var"), "--no-mqtt",
        )  # fmt: skip
        with self.switch_log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait(lambda: self.health().get("ready"), 30, "switch ready")

    def fetch(self, path: str) -> str:
        script = (
            "import sys,urllib.request,urllib.error\n"
            "try:\n r=urllib.request.urlopen(sys.argv[1],timeout=3);print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n print(e.read().decode())\n"
        )
        out = subprocess.run(
            self.net.exec(self.net.switch, sys.executable, "-c", script, f"http://{self.http}{path}"),
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return out.stdout

    def health(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.fetch("/healthz")))
        except ValueError:
            return {}

    def trunk(self) -> dict[str, Any]:
        return dict(self.health().get("detail", {}).get("trunks", {}).get("sipgate", {}))

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_alive(self.proc, check, timeout, f"switch: {what}", self._tails, 0.3)

    def _tails(self) -> str:
        provider = self.provider.text()[-3000:] if self.provider else ""
        return f"--- switch:\n{self.output()[-3000:]}\n--- provider:\n{provider}"

    def output(self) -> str:
        text = self.switch_log.read_text(errors="replace") if self.switch_log.exists() else ""
        edge = self.tmp / "var" / "edge" / "kamailio.log"
        return text + (
            "\n--- edge log:\n" + edge.read_text(errors="replace") if edge.exists() else ""
        )

    def sipp(self, address: str, scenario: str, args: list[str], name: str) -> Sipp:
        """SIPp on ``address``:5060 inside the provider's namespace."""
        sipp = Sipp(self.tmp, name, scenario, args, port=5060, media_port=16000)
        sipp.cmd = self.net.exec(
            self.net.provider, *(address if c == LOOPBACK else c for c in sipp.cmd)
        )
        return sipp

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, grace=10)
        if self.provider is not None:
            self.provider.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    need_root()
    net = Net(tag=str(time.monotonic_ns() % 10000)).open()
    w = World(tmp_path, net)
    try:
        yield w
    finally:
        try:
            w.close()
        finally:
            net.close()  # kills whatever still runs inside our two namespaces


__all__ = ["BUSINESS", "CALLER", "CUSTOMER", "MOBILE", "MOBILE_NUMBER", "World"]
