"""An office phone without NAT, and presence through the home router (issue 15).

Real peers in network namespaces (tests/helpers/netns.py): the switch (``rufweiche run``:
edge + one worker + rtpengine) on 100.64.0.1; the assistant's baresip behind the home
router (MASQUERADE) on 192.168.178.20; the office's baresip on 198.51.100.20, wired straight
to the switch (no NAT). SIPp on the switch host's loopback is the trunk.

- The office phone registers: the edge stores its own address (no ``received``, no NAT
  flag), a trunk call to the business rings it, it answers, audio flows both ways.
- The assistant's phone SUBSCRIBEs to Jan's presence through her router and gets NOTIFYs
  for every change (set over the switch's presence API), seen on her LAN by tshark.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from switch.edge.credentials import Secrets, ha1, save_secrets
from tests.helpers.netns import (
    OFFICE_IP,
    PHONE_IP,
    SWITCH_IP,
    Net,
    in_ns,
    rtp_counts,
    sh,
    start_switch,
    wait_log,
)
from tests.helpers.processes import stop_process
from tests.helpers.sipp import BUSINESS_E164, Sipp

pytestmark = [
    pytest.mark.peer,
    pytest.mark.netns,
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("ip", "iptables", "rtpengine", "baresip", "tshark")),
        reason="needs ip, iptables, rtpengine, baresip and tshark",
    ),
]

HTTP = "127.0.0.1:8089"
TENANT = "buero-anna"
JAN = f"sip:{TENANT}.jan@office"


@pytest.fixture
def net() -> Iterator[Net]:
    built = Net()
    try:
        built.build(udp_timeout=30)
        built.add_office()
        yield built
    finally:
        built.close()


def write_switch(tmp: Path) -> Path:
    plans = tmp / "plans"
    plans.mkdir()
    (plans / "anna.yaml").write_text(
        f"""
tenant: {TENANT}
name: Buero Anna
numbers: ["{BUSINESS_E164}"]
people:
  buero:
    name: Office
    devices: {{desk: "sip:buero@office"}}
  anna:
    name: Anna
    devices: {{home: "sip:anna@office"}}
  jan:
    name: Jan
    devices: {{mobile: "tel:+491701234567"}}
rules:
  - name: the office desk
    then: [{{ring: [buero.desk], timeout: 15s}}]
"""
    )
    secrets = tmp / "secrets.yaml"
    users = {"anna": ha1("anna", "office", "pw"), "buero": ha1("buero", "office", "pw2")}
    save_secrets(secrets, Secrets(realm="office", users=users))
    settings = tmp / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "sip": f"{SWITCH_IP}:5060",
                "http": HTTP,
                "data_dir": str(tmp / "var"),
                "dialplans": [str(plans)],
                "mqtt": {"enabled": False},
                "edge": {
                    "secrets_file": str(secrets),
                    "trunk_sources": ["127.0.0.0/8"],
                    "natping_interval": 10,
                    "log_level": 2,
                    "media_relay": {"ng_listen": "127.0.0.1:2225", "delete_delay": 0},
                },
            }
        )
    )
    return settings


def start_baresip(
    ns: str, tmp: Path, name: str, ip: str, account: str, ctrl: int, contacts: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    home = tmp / name
    home.mkdir()
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method\tepoll",
                f"sip_listen\t{ip}:5060",
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
                "module_app\taccount.so",
                "module_app\tcontact.so",
                "module_app\tpresence.so",
                "module_app\tmenu.so",
                "module_app\tctrl_tcp.so",
                f"ctrl_tcp_listen\t{ip}:{ctrl}",
                "",
            ]
        )
    )
    (home / "accounts").write_text(account + "\n")
    (home / "contacts").write_text(contacts)
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            in_ns(ns, ["baresip", "-f", str(home), "-n", ip]),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc, log


def jan_as_shown(ns: str, ip: str, ctrl: int) -> str | None:
    """Jan's status in the phone's contact list (ctrl_tcp ``contacts``)."""
    script = (
        "import json,socket\n"
        f"s=socket.create_connection(('{ip}',{ctrl}),timeout=2)\n"
        "m=json.dumps({'command':'contacts','params':'','token':'t'}).encode()\n"
        "s.sendall(str(len(m)).encode()+b':'+m+b',')\n"
        "b=b''\n"
        "while not (b'\"response\":true' in b and b.endswith(b',')):\n"
        " c=s.recv(65536)\n"
        " if not c: break\n"
        " b+=c\n"
        "print(b.decode(errors='replace'))\n"
    )
    out = sh("python3", "-c", script, ns=ns, check=False)
    _, _, payload = out.strip().partition(":")
    try:
        data = json.loads(payload.rstrip(","))["data"]
    except (ValueError, KeyError):
        return None
    plain = re.sub(r"\x1b\[[0-9;]*m", "", data)
    match = re.search(rf"(\w+) Jan <{re.escape(JAN)}>", plain)
    return match.group(1) if match else None


def set_presence(net: Net, person: str, state: str) -> None:
    body = json.dumps({"state": state})
    url = f"http://{HTTP}/api/v1/tenants/{TENANT}/people/{person}/presence"
    out = sh(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
        "-H", "Content-Type: application/json", "-d", body, url, ns=net.switch,
    )  # fmt: skip
    assert out == "200", out


def wait_shown(net: Net, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        shown = jan_as_shown(net.phone, PHONE_IP, 4451)
        if shown == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"Jan shown as {shown!r}, expected {status!r}")


@pytest.mark.timeout(100)
def test_office_phone_without_nat_and_presence_through_the_home_router(
    net: Net, tmp_path: Path
) -> None:
    assert net.office is not None
    switch = start_switch(net, tmp_path, write_switch(tmp_path))
    pcap, err = tmp_path / "lan.pcap", tmp_path / "tshark.err"
    with err.open("wb") as out:
        tshark = subprocess.Popen(
            in_ns(net.phone, ["tshark", "-i", "eth0", "-f", "udp port 5060", "-w", str(pcap)]),
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while "Capture started" not in err.read_text(errors="replace"):
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    office, office_log = start_baresip(
        net.office, tmp_path, "office", OFFICE_IP,
        f'<sip:buero@office>;outbound="sip:{SWITCH_IP}:5060";auth_pass=pw2;regint=300;'
        "answermode=auto;audio_codecs=PCMU", 4450,
    )  # fmt: skip
    anna, anna_log = start_baresip(
        net.phone, tmp_path, "anna", PHONE_IP,
        f'<sip:anna@office>;outbound="sip:{SWITCH_IP}:5060";auth_pass=pw;regint=300;'
        "answermode=auto;audio_codecs=PCMU", 4451,
        contacts=f'"Jan" <{JAN}>;presence=p2p\n',
    )  # fmt: skip
    caller: Sipp | None = None
    try:
        wait_log(office_log, r"200 OK.*\[1 binding\]", 15)
        wait_log(anna_log, r"200 OK.*\[1 binding\]", 15)
        with closing(sqlite3.connect(tmp_path / "var" / "edge" / "edge.db")) as db:
            query = "SELECT username, contact, received FROM location"
            rows = {user: (contact, received) for user, contact, received in db.execute(query)}
        # The office phone: its own address, nothing to fix. Anna: her router's address.
        assert OFFICE_IP in rows["buero"][0], rows
        assert not rows["buero"][1], rows
        assert rows["anna"][1].startswith("sip:100.64.0.2:"), rows

        # A trunk call to the business rings the office desk phone; audio both ways.
        caller = Sipp(
            tmp_path, "caller", "uac_via_edge.xml",
            [f"{SWITCH_IP}:5060", "-s", BUSINESS_E164, "-key", "caller", "+491715550100",
             "-m", "1", "-d", "4000", "-timeout", "25", "-rtp_echo"],
        )  # fmt: skip
        caller.cmd = in_ns(net.switch, caller.cmd)
        caller.start()
        assert caller.wait(30) == 0, caller.diagnostics()
        text = wait_log(office_log, r"packets:", 10)
        tx, rx = rtp_counts(text)
        assert tx > 100, "the office phone sent audio"
        assert rx > 100, "audio came back to the office phone (the trunk echoes it)"

        # Presence through NAT: her phone subscribed to Jan; every change reaches her.
        wait_shown(net, "Online", 15)
        set_presence(net, "jan", "dnd")
        wait_shown(net, "Busy")
        set_presence(net, "jan", "available")
        wait_shown(net, "Online")
    finally:
        if caller is not None:
            caller.stop()
        stop_process(anna)
        stop_process(office)
        if tshark.poll() is None:
            tshark.send_signal(signal.SIGINT)
            tshark.wait(5)
        stop_process(switch, grace=10)
    notifies = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip.Method == NOTIFY && ip.src == 100.64.0.1",
         "-T", "fields", "-e", "ip.dst", "-e", "sip.Event"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()  # fmt: skip
    presence = [n for n in notifies if n.endswith("presence")]
    # Initial state, dnd, available: each NOTIFY crossed the router to her private address.
    assert len(presence) >= 3, notifies
    assert all(n.startswith(PHONE_IP) for n in presence), presence
