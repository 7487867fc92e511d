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
import subprocess
from pathlib import Path

import pytest

from tests.helpers import netns
from tests.helpers.baresip import contact_status, ctrl_request
from tests.helpers.edge import stored_bindings
from tests.helpers.netns import OFFICE_IP, PHONE_IP, SWITCH_IP, Net
from tests.helpers.processes import poll_until, stop_process
from tests.helpers.sipp import Sipp

pytestmark = netns.marks("tshark")
NET_OFFICE = True  # the ``net`` fixture (tests/switch/conftest.py) adds the office

HTTP = "127.0.0.1:8089"
TENANT = "buero-anna"
JAN = f"sip:{TENANT}.jan@office"


def write_switch(tmp: Path) -> Path:
    return netns.write_switch_files(
        tmp,
        netns.anna_plan(
            "- {name: the office desk, then: [{ring: [buero.desk], timeout: 15s}]}",
            people="""
buero: {name: Office, devices: {desk: "sip:buero@office"}}
jan: {name: Jan, devices: {mobile: "tel:+491701234567"}}
""",
        ),
        {"anna": "pw", "buero": "pw2"},
        {
            "natping_interval": 10,
            "media_relay": {"ng_listen": "127.0.0.1:2225", "delete_delay": 0},
        },
        http=HTTP,
    )


def start_phone(
    ns: str, tmp: Path, name: str, ip: str, account: str, ctrl: int, contacts: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    return netns.start_baresip(
        ns, tmp, name, ip, account,
        ctrl=ctrl, apps=("contact.so", "presence.so"), contacts=contacts,
    )  # fmt: skip


def jan_as_shown(ns: str, ip: str, ctrl: int) -> str | None:
    """Jan's status in the phone's contact list (ctrl_tcp ``contacts``)."""
    script = (
        "import socket\n"
        f"s=socket.create_connection(('{ip}',{ctrl}),timeout=2)\n"
        f"s.sendall({ctrl_request('contacts')!r})\n"
        "b=b''\n"
        "while not (b'\"response\":true' in b and b.endswith(b',')):\n"
        " c=s.recv(65536)\n"
        " if not c: break\n"
        " b+=c\n"
        "print(b.decode(errors='replace'))\n"
    )
    out = netns.sh("python3", "-c", script, ns=ns, check=False)
    return contact_status(out, "Jan", JAN)


def set_presence(net: Net, person: str, state: str) -> None:
    body = json.dumps({"state": state})
    url = f"http://{HTTP}/api/v1/tenants/{TENANT}/people/{person}/presence"
    out = netns.sh(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
        "-H", "Content-Type: application/json", "-d", body, url, ns=net.switch,
    )  # fmt: skip
    assert out == "200", out


def wait_shown(net: Net, status: str, timeout: float = 10) -> None:
    poll_until(
        lambda: jan_as_shown(net.phone, PHONE_IP, 4451),
        lambda shown: shown == status,
        timeout,
        f"Jan shown as {status!r}",
        0.2,
    )


@pytest.mark.timeout(100)
def test_office_phone_without_nat_and_presence_through_the_home_router(
    net: Net, tmp_path: Path
) -> None:
    assert net.office is not None
    switch = netns.start_switch(net, tmp_path, write_switch(tmp_path), HTTP)
    tshark, pcap = netns.capture(net.phone, tmp_path, "udp port 5060")
    office, office_log = start_phone(
        net.office, tmp_path, "office", OFFICE_IP,
        f'<sip:buero@office>;outbound="sip:{SWITCH_IP}:5060";auth_pass=pw2;regint=300;'
        "answermode=auto;audio_codecs=PCMU", 4450,
    )  # fmt: skip
    anna, anna_log = start_phone(
        net.phone, tmp_path, "anna", PHONE_IP,
        f'<sip:anna@office>;outbound="sip:{SWITCH_IP}:5060";auth_pass=pw;regint=300;'
        "answermode=auto;audio_codecs=PCMU", 4451,
        contacts=f'"Jan" <{JAN}>;presence=p2p\n',
    )  # fmt: skip
    caller: Sipp | None = None
    try:
        netns.wait_log(office_log, r"200 OK.*\[1 binding\]", 15)
        netns.wait_log(anna_log, r"200 OK.*\[1 binding\]", 15)
        db = tmp_path / "var" / "edge" / "edge.db"
        rows = {user: stored_bindings(db, user)[0] for user in ("buero", "anna")}
        # The office phone: its own address, nothing to fix. Anna: her router's address.
        assert OFFICE_IP in rows["buero"][0], rows
        assert not rows["buero"][1], rows
        assert rows["anna"][1].startswith("sip:100.64.0.2:"), rows

        # A trunk call to the business rings the office desk phone; audio both ways.
        caller = netns.trunk_caller(net, tmp_path, "caller", "-rtp_echo")
        caller.start()
        assert caller.wait(30) == 0, caller.diagnostics()
        text = netns.wait_log(office_log, r"packets:", 10)
        tx, rx = netns.rtp_counts(text)
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
        netns.stop_capture(tshark)
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
