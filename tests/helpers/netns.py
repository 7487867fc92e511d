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
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from switch.edge.credentials import Secrets, ha1, save_secrets
from tests.helpers.processes import REPO
from tests.helpers.sipp import BUSINESS_E164, Sipp

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


def marks(*tools: str) -> list[pytest.MarkDecorator]:
    """A namespace test module's marks: peer, netns, slow, and a skip unless ``ip``,
    ``iptables``, ``rtpengine``, ``baresip`` and ``tools`` are installed."""
    needed = ("ip", "iptables", "rtpengine", "baresip", *tools)
    return [
        pytest.mark.peer,
        pytest.mark.netns,
        pytest.mark.slow,
        pytest.mark.skipif(
            not all(shutil.which(t) for t in needed), reason=f"needs {', '.join(needed)}"
        ),
    ]


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


@contextlib.contextmanager
def network(udp_timeout: int = 30, *, office: bool = False) -> Iterator[Net]:
    """A built :class:`Net` (with the office namespace if ``office``), closed afterwards."""
    built = Net()
    try:
        built.build(udp_timeout=udp_timeout)
        if office:
            built.add_office()
        yield built
    finally:
        built.close()


TO_ANNA = "- name: to anna at home\n  then: [{ring: [anna.home], timeout: 15s}]\n"


def anna_plan(
    rules: str = TO_ANNA, *, people: str = "", numbers: Sequence[str] = (BUSINESS_E164,)
) -> str:
    """The dial plan of ``buero-anna`` ("Buero Anna", ``numbers``): Anna with her phone behind
    the home router (``anna.home``), more ``people`` and the
    ``rules`` (YAML text each; by default one: ring Anna at home, :data:`TO_ANNA`)."""
    listed = ", ".join(f'"{number}"' for number in numbers)
    more = textwrap.indent(textwrap.dedent(people).strip("\n"), "  ")
    return (
        f"tenant: buero-anna\nname: Buero Anna\nnumbers: [{listed}]\npeople:\n"
        f'  anna:\n    name: Anna\n    devices: {{home: "sip:anna@office"}}\n{more}\n'
        f"rules:\n{textwrap.dedent(rules).strip(chr(10))}\n"
    )


def write_switch_files(
    tmp: Path,
    plan: str,
    users: dict[str, str],
    edge: dict[str, Any],
    *,
    http: str = HTTP,
    **top: Any,
) -> Path:
    """The switch's files in ``tmp``: ``plans/anna.yaml`` (the text ``plan``), the edge's
    secrets (realm ``office``, ``users`` name → password) and ``settings.yaml`` (SIP on
    100.64.0.1:5060, SIPp on the switch host as the trunk, MQTT off; ``edge`` and ``top``
    add to the edge's and the top-level settings). Returns the settings file."""
    plans = tmp / "plans"
    plans.mkdir()
    (plans / "anna.yaml").write_text(plan)
    secrets = tmp / "secrets.yaml"
    hashed = {name: ha1(name, "office", password) for name, password in users.items()}
    save_secrets(secrets, Secrets(realm="office", users=hashed))
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "sip": f"{SWITCH_IP}:5060",
                "http": http,
                "data_dir": str(tmp / "var"),
                "dialplans": [str(plans)],
                **top,
                "mqtt": {"enabled": False},
                "edge": {
                    "secrets_file": str(secrets),
                    "trunk_sources": ["127.0.0.0/8"],  # SIPp on the switch host is the trunk
                    "log_level": 2,
                    **edge,
                },
            }
        )
    )
    return settings


def start_baresip(
    ns: str,
    tmp: Path,
    name: str,
    ip: str,
    account: str,
    *,
    ctrl: int | None = None,
    config: Sequence[str] = (),
    modules: Sequence[str] = (),
    apps: Sequence[str] = (),
    contacts: str = "",
    flags: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], Path]:
    """baresip in ``ns`` on ``ip``:5060 (PCMU, a 440 Hz sine, RTP stats), home ``tmp/name``,
    log ``tmp/name.log``; ``config`` lines after ``sip_listen``, more ``modules`` and
    ``apps`` (before ``menu.so``), commands on ctrl_tcp port ``ctrl`` if given."""
    home = tmp / name
    home.mkdir()
    ctrl_lines = ["module_app\tctrl_tcp.so", f"ctrl_tcp_listen\t{ip}:{ctrl}"] if ctrl else []
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method\tepoll",
                f"sip_listen\t{ip}:5060",
                *config,
                "audio_source\tausine,440",
                "audio_alert\tnone",
                "audio_player\tnone",
                "ausrc_srate\t48000",
                "ausrc_channels\t2",
                "rtp_ports\t20000-20009",
                "rtcp_mux\tno",
                "rtp_stats\tyes",
                "module_path\t/usr/lib/baresip/modules",
                "module\tg711.so",
                "module\tausine.so",
                *(f"module\t{module}" for module in modules),
                "module_app\taccount.so",
                *(f"module_app\t{app}" for app in apps),
                "module_app\tmenu.so",
                *ctrl_lines,
                "",
            ]
        )
    )
    (home / "accounts").write_text(account + "\n")
    (home / "contacts").write_text(contacts)
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            in_ns(ns, ["baresip", *flags, "-f", str(home), "-n", ip]),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc, log


def trunk_caller(net: Net, tmp: Path, name: str, *args: str, hold_ms: int = 4000) -> Sipp:
    """SIPp on the switch host (the trunk) calling the business number through the edge
    once, holding ``hold_ms``; ``args`` add to its command line (``-rtp_echo``). Not started."""
    caller = Sipp(
        tmp, name, "uac_via_edge.xml",
        [f"{SWITCH_IP}:5060", "-s", BUSINESS_E164, "-key", "caller", "+491715550100",
         "-m", "1", "-d", str(hold_ms), "-timeout", "25", *args],
    )  # fmt: skip
    caller.cmd = in_ns(net.switch, caller.cmd)
    return caller


def capture(ns: str, tmp: Path, bpf: str = "udp") -> tuple[subprocess.Popen[bytes], Path]:
    """tshark on ``eth0`` in ``ns`` into ``tmp/lan.pcap``, once it has started capturing."""
    pcap, err = tmp / "lan.pcap", tmp / "tshark.err"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            in_ns(ns, ["tshark", "-i", "eth0", "-f", bpf, "-w", str(pcap)]),
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while "Capture started" not in err.read_text(errors="replace"):
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    return proc, pcap


def stop_capture(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(5)


def start_switch(net: Net, tmp: Path, settings: Path, http: str = HTTP) -> subprocess.Popen[bytes]:
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
        out = sh("curl", "-s", f"http://{http}/healthz", ns=net.switch, check=False)
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
