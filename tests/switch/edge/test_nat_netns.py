"""A phone behind a home router (MASQUERADE, UDP bindings forgotten after 30 s) registers
through the edge, stays reachable, is called and gets audio both ways through rtpengine.

Real peers in network namespaces (tests/helpers/netns.py): the switch (``rufweiche run``:
Kamailio edge + one pjsua2 worker + rtpengine) on 100.64.0.1, the assistant's baresip on
192.168.178.20 behind the router, SIPp as the caller on the switch host (trunk on
loopback, echoing the RTP it gets), tshark on the phone's LAN side.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import netns
from tests.helpers.edge import stored_bindings
from tests.helpers.netns import PHONE_IP, SWITCH_IP, Net
from tests.helpers.processes import stop_process
from tests.helpers.sipp import Sipp

pytestmark = netns.marks("tshark")

HTTP = "127.0.0.1:8088"


def write_switch(tmp: Path, natping: int) -> Path:
    return netns.write_switch_files(
        tmp,
        netns.anna_plan(),
        {"anna": "pw"},
        {
            "natping_interval": natping,
            "media_relay": {"ng_listen": "127.0.0.1:2223", "delete_delay": 0},
        },
        http=HTTP,
    )


def start_phone(net: Net, tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    return netns.start_baresip(
        net.phone, tmp, "anna", PHONE_IP,
        f"<sip:anna@{SWITCH_IP}>;auth_pass=pw;regint=300;answermode=auto;audio_codecs=PCMU",
    )  # fmt: skip


def reply_from(net_ns: str, host: str, port: int) -> bool:
    """Does an OPTIONS sent from ``net_ns`` to host:port get any answer within 1 s?"""
    script = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1);"
        "s.bind(('0.0.0.0',0));p=s.getsockname()[1];"
        f"m='OPTIONS sip:{host}:{port} SIP/2.0\\r\\nVia: SIP/2.0/UDP 100.64.0.2:'+str(p)+"
        "';branch=z9hG4bKx1;rport\\r\\nFrom: <sip:probe@100.64.0.2>;tag=1\\r\\n"
        f"To: <sip:{host}>\\r\\nCall-ID: probe1\\r\\nCSeq: 1 OPTIONS\\r\\n"
        "Max-Forwards: 70\\r\\nContent-Length: 0\\r\\n\\r\\n';"
        f"s.sendto(m.encode(),('{host}',{port}))\n"
        "try: s.recvfrom(9000); print('REPLY')\nexcept OSError: print('NONE')"
    )
    return "REPLY" in netns.sh("python3", "-c", script, ns=net_ns, check=False)


@pytest.mark.timeout(100)
def test_phone_behind_nat_registers_stays_reachable_and_gets_audio_through_rtpengine(
    net: Net, tmp_path: Path
) -> None:
    started = time.monotonic()
    settings = write_switch(tmp_path, natping=10)
    switch = netns.start_switch(net, tmp_path, settings, HTTP)
    tshark, pcap = netns.capture(net.phone, tmp_path)
    time.sleep(0.5)
    phone, phone_log = start_phone(net, tmp_path)
    caller: Sipp | None = None
    try:
        netns.wait_log(phone_log, r"200 OK.*\[1 binding\]", 10)
        registered = time.monotonic()
        registered_wall = time.time()
        # The edge stores the public (received) address the router gave her, not her own.
        ((contact, received),) = stored_bindings(tmp_path / "var" / "edge" / "edge.db", "anna")
        assert PHONE_IP in contact
        assert received.startswith("sip:100.64.0.2:"), received

        # Nobody but the edge is reachable: the worker port is on loopback only.
        dispatcher = (tmp_path / "var" / "edge" / "dispatcher.list").read_text()
        worker_port = int(re.search(r"sip:127\.0\.0\.1:(\d+)", dispatcher).group(1))  # type: ignore[union-attr]
        assert reply_from(net.router, SWITCH_IP, 5060), "positive control: the edge answers"
        assert not reply_from(net.router, SWITCH_IP, worker_port), "worker port reachable"

        # 40 s idle, longer than the router keeps a silent UDP binding (30 s): only the
        # edge's keepalive OPTIONS hold it open.
        time.sleep(max(0.0, 40 - (time.monotonic() - registered)))
        idle = time.monotonic() - registered
        idle_end_wall = time.time()

        caller = netns.trunk_caller(net, tmp_path, "caller", "-rtp_echo")
        caller.start()
        assert caller.wait(30) == 0, caller.diagnostics()
        text = netns.wait_log(phone_log, r"packets:", 10)
    finally:
        if caller is not None:
            caller.stop()
        stop_process(phone)
        netns.stop_capture(tshark)
        stop_process(switch, grace=10)
    assert "Call established" in text or "answered" in text.lower()
    tx, rx = (int(n) for n in re.search(r"packets:\s+(\d+)\s+(\d+)", text).groups())  # type: ignore[union-attr]
    assert tx > 100, "the phone sent audio"
    assert rx > 100, "audio came back to the phone through rtpengine (caller echoes it)"

    sdp = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip.Method == INVITE", "-T", "fields",
         "-e", "sdp.connection_info"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "IN IP4 100.64.0.1" in sdp, sdp
    assert "127.0.0.1" not in sdp, "a worker's loopback address left the host"
    rtp = subprocess.run(
        ["tshark", "-r", str(pcap), "-q", "-z", "conv,udp",
         "-Y", "udp.port == 20000 || udp.port == 20002"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert f"{PHONE_IP}:" in rtp, rtp
    assert "100.64.0.1:" in rtp, rtp
    options = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip.Method == OPTIONS && ip.src == 100.64.0.1",
         "-T", "fields", "-e", "frame.time_relative"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    assert len(options) >= 3, f"keepalive OPTIONS during {idle:.0f} s idle: {options}"
    assert time.monotonic() - started < 90
    # Registration/keepalive traffic per phone, measured on her LAN during the idle window
    # (issue 15: "registration/keepalive traffic per phone"; docs/edge.md has the figures).
    per_minute = idle_traffic(pcap, registered_wall, idle_end_wall)
    print(f"\nidle SIP traffic of one NATed phone, per minute ({idle:.0f} s window): {per_minute}")
    assert per_minute["OPTIONS"] >= 3  # natping_interval 10 s: 6 per minute expected
    assert per_minute["total"] < 40  # nothing else chatters while she is idle


def idle_traffic(pcap: Path, start: float, end: float) -> dict[str, float]:
    """SIP packets between the phone and the edge in [start, end] (wall clock), per
    minute, by kind: OPTIONS (keepalive), REGISTER, replies, and the total with bytes."""
    rows = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "frame.time_epoch",
         "-e", "sip.Method", "-e", "sip.CSeq.method", "-e", "frame.len"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()  # fmt: skip
    minutes = (end - start) / 60
    counts = {"OPTIONS": 0.0, "OPTIONS replies": 0.0, "REGISTER": 0.0, "REGISTER replies": 0.0}
    total = size = 0
    for row in rows:
        stamp, method, cseq, length = [*row.split("\t"), "", "", "", "0"][:4]
        if not start <= float(stamp) <= end:
            continue
        total += 1
        size += int(length or 0)
        key = method if method else f"{cseq} replies"
        if key in counts:
            counts[key] += 1
    result = {k: round(v / minutes, 1) for k, v in counts.items()}
    result["total"] = round(total / minutes, 1)
    result["bytes"] = round(size / minutes)
    return result
