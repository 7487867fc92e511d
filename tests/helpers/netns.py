"""A small Internet in network namespaces (PEERS.md "A home router and a provider"):

    switch ns  wan0 100.64.0.1 ──── 100.64.0.2 wan0  router ns  lan0 192.168.178.1
                                                    (MASQUERADE, udp timeout 30 s)
                                                         │
                                          phone ns  eth0 192.168.178.20 (default via .1)

Names carry the test's pid and a counter (unique per run); :meth:`Net.close` deletes them
(their veths go with them). Everything a test starts inside runs via ``ip netns exec``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.processes import REPO

SWITCH_IP = "100.64.0.1"
ROUTER_WAN = "100.64.0.2"
ROUTER_LAN = "192.168.178.1"
PHONE_IP = "192.168.178.20"
HTTP = "127.0.0.1:8089"  # the switch's HTTP side inside its namespace (start_switch)
# The office (no NAT): a public-looking address (TEST-NET-2, RFC 5737), so that nathelper
# does not take it for a private one (it does so for 100.64.0.0/10, RFC 6598).
OFFICE_GW = "198.51.100.1"
OFFICE_IP = "198.51.100.20"
_count = itertools.count()


def sh(*argv: str, ns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {done.returncode} {done.stderr}")
    return done.stdout


def in_ns(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


class Net:
    def __init__(self) -> None:
        tag = f"{os.getpid()}{next(_count)}"
        self.switch, self.router, self.phone = (f"rw{tag}{n}" for n in ("s", "r", "p"))
        self.created: list[str] = []
        self.office: str | None = None

    def build(self, udp_timeout: int = 30) -> Net:
        for ns in (self.switch, self.router, self.phone):
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        tag = self.switch[2:-1]
        a, b, c, d = (f"v{tag}{x}"[-15:] for x in "abcd")
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", self.switch)
        sh("ip", "link", "set", b, "netns", self.router)
        sh("ip", "link", "add", c, "type", "veth", "peer", "name", d)
        sh("ip", "link", "set", c, "netns", self.router)
        sh("ip", "link", "set", d, "netns", self.phone)
        for ns, old, new, addr in (
            (self.switch, a, "wan0", f"{SWITCH_IP}/24"),
            (self.router, b, "wan0", f"{ROUTER_WAN}/24"),
            (self.router, c, "lan0", f"{ROUTER_LAN}/24"),
            (self.phone, d, "eth0", f"{PHONE_IP}/24"),
        ):
            sh("ip", "link", "set", old, "name", new, ns=ns)
            sh("ip", "addr", "add", addr, "dev", new, ns=ns)
            sh("ip", "link", "set", new, "up", ns=ns)
        sh("ip", "route", "add", "default", "via", ROUTER_LAN, ns=self.phone)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.router)
        sh("sysctl", "-qw", f"net.netfilter.nf_conntrack_udp_timeout={udp_timeout}", ns=self.router)
        sh(
            "sysctl",
            "-qw",
            f"net.netfilter.nf_conntrack_udp_timeout_stream={udp_timeout}",
            ns=self.router,
        )
        sh(
            "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.178.0/24",
            "-o", "wan0", "-j", "MASQUERADE", ns=self.router,
        )  # fmt: skip
        return self

    def add_office(self) -> str:
        """An office namespace wired straight to the switch (no NAT): the switch gets
        198.51.100.1 on ``off0``, the office phone 198.51.100.20. Returns its name."""
        office = self.switch[:-1] + "o"
        sh("ip", "netns", "add", office)
        self.created.append(office)
        sh("ip", "link", "set", "lo", "up", ns=office)
        tag = self.switch[2:-1]
        e, f = (f"v{tag}{x}"[-15:] for x in "ef")
        sh("ip", "link", "add", e, "type", "veth", "peer", "name", f)
        sh("ip", "link", "set", e, "netns", self.switch)
        sh("ip", "link", "set", f, "netns", office)
        for ns, old, new, addr in (
            (self.switch, e, "off0", f"{OFFICE_GW}/24"),
            (office, f, "eth0", f"{OFFICE_IP}/24"),
        ):
            sh("ip", "link", "set", old, "name", new, ns=ns)
            sh("ip", "addr", "add", addr, "dev", new, ns=ns)
            sh("ip", "link", "set", new, "up", ns=ns)
        sh("ip", "route", "add", "default", "via", OFFICE_GW, ns=office)
        self.office = office
        return office

    def close(self) -> None:
        for ns in reversed(self.created):
            for pid in sh("ip", "netns", "pids", ns, check=False).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            sh("ip", "netns", "del", ns, check=False)
        self.created.clear()


def start_switch(net: Net, tmp: Path, settings: Path) -> subprocess.Popen[bytes]:
    with (tmp / "switch.log").open("wb") as log:
        proc = subprocess.Popen(
            in_ns(net.switch, [sys.executable, "-m", "switch", "run", "--settings", str(settings)]),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp / "switch.log").read_text()
        out = sh("curl", "-s", f"http://{HTTP}/healthz", ns=net.switch, check=False)
        if '"ready": true' in out:
            return proc
        time.sleep(0.3)
    raise AssertionError("switch not ready:\n" + (tmp / "switch.log").read_text()[-3000:])


def wait_log(path: Path, pattern: str, timeout: float, start: int = 0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")[start:]
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{path.name}: no {pattern!r} in:\n{path.read_text()[-3000:]}")


def rtp_counts(log_text: str) -> tuple[int, int]:
    match = re.search(r"packets:\s+(\d+)\s+(\d+)", log_text)
    assert match, log_text[-3000:]
    return int(match.group(1)), int(match.group(2))
