"""A bypassed call's media figures come from rtpengine (issue 16), against real peers.

Network namespaces (tests/helpers/netns.py): the switch (``rufweiche run``: edge, one
worker with the media bypass on by default, rtpengine) on 100.64.0.1; a baresip caller in
the office namespace (198.51.100.20, a trunk by ``trunk_sources``) calls the business
number; Anna's baresip behind her home router (192.168.178.20, registered) answers. Both
legs leave the host, so both go through rtpengine; the worker's SDP names the other side,
so pjsua2 sees no RTP. Both phones send RTCP (baresip), which the relay forwards.

Loss is injected at the caller: iptables in the office namespace drops every 10th RTP
packet it sends (``statistic --mode nth``; only packets of RTP size, RTCP passes). The
call record's caller leg and the dashboard then show the relay's figures: what rtpengine
received, the loss Anna's phone reported about the caller's audio (≈ 10 %), and a MOS
from them; Anna's leg shows no loss. Baresip's own count of what it sent is the check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import netns
from tests.helpers.netns import OFFICE_IP, PHONE_IP, SWITCH_IP, Net
from tests.helpers.processes import poll_until, stop_process
from tests.helpers.sipp import BUSINESS_E164

pytestmark = netns.marks("curl")
NET_OFFICE = True  # the ``net`` fixture (tests/switch/conftest.py) adds the office

HTTP = "127.0.0.1:8089"
HOLD_S = 20  # baresip reports RTCP about every 5 s: several rounds


def write_switch(tmp: Path) -> Path:
    return netns.write_switch_files(
        tmp,
        netns.anna_plan(),
        {"anna": "pw"},
        {
            "trunk_sources": [f"{OFFICE_IP}/32"],  # the office caller stands for a trunk
            "natping_interval": 10,
            "media_relay": {"ng_listen": "127.0.0.1:2226", "delete_delay": 30},
        },
        http=HTTP,
    )


def api(net: Net, path: str) -> Any:
    return json.loads(netns.sh("curl", "-s", f"http://{HTTP}{path}", ns=net.switch))


def dashboard_snapshot(net: Net) -> dict[str, Any]:
    """The first ``snapshot`` event of the dashboard's event stream."""
    out = netns.sh(
        "curl", "-s", "-N", "--max-time", "2", f"http://{HTTP}/api/v1/events",
        ns=net.switch, check=False,
    )  # fmt: skip
    for block in out.split("\n\n"):
        if "event: snapshot" in block:
            data = "".join(
                line[5:].strip() for line in block.splitlines() if line.startswith("data:")
            )
            return dict(json.loads(data))
    raise AssertionError(f"no snapshot event in {out[:500]!r}")


def ended_call(net: Net, timeout: float = 15) -> dict[str, Any]:
    calls = poll_until(
        lambda: api(net, "/api/v1/calls")["calls"],
        lambda calls: calls and not calls[0]["active"],
        timeout,
        "an ended call",
        0.3,
    )
    return dict(calls[0])


@pytest.mark.timeout(110)
def test_a_bypassed_calls_figures_come_from_rtpengine_with_the_injected_loss(
    net: Net, tmp_path: Path
) -> None:
    assert net.office is not None
    switch = netns.start_switch(net, tmp_path, write_switch(tmp_path), HTTP)
    anna, anna_log = netns.start_baresip(
        net.phone, tmp_path, "anna", PHONE_IP,
        f'<sip:anna@office>;outbound="sip:{SWITCH_IP}:5060";auth_pass=pw;regint=300;'
        "answermode=auto;audio_codecs=PCMU",
    )  # fmt: skip
    caller = None
    try:
        netns.wait_log(anna_log, r"200 OK.*\[1 binding\]", 15)
        # Every 10th RTP packet the caller sends is lost (RTP is 172 bytes, RTCP < 150).
        netns.sh(
            "iptables", "-A", "OUTPUT", "-p", "udp", "--sport", "20000:20009",
            "-m", "length", "--length", "160:400",
            "-m", "statistic", "--mode", "nth", "--every", "10", "--packet", "0",
            "-j", "DROP", ns=net.office,
        )  # fmt: skip
        caller, caller_log = netns.start_baresip(
            net.office, tmp_path, "caller", OFFICE_IP,
            "<sip:caller@198.51.100.20>;regint=0;audio_codecs=PCMU",
            flags=("-t", str(HOLD_S), "-e", f"/dial sip:{BUSINESS_E164}@{SWITCH_IP}"),
        )  # fmt: skip
        text = netns.wait_log(caller_log, r"packets:", HOLD_S + 15)
        call = ended_call(net)
        snapshot = dashboard_snapshot(net)
    finally:
        if caller is not None:
            stop_process(caller)
        stop_process(anna)
        stop_process(switch, grace=10)
    sent = int(re.search(r"packets:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    assert call["media_path"] == "bypass", call
    media, anna_leg = call["media"], call["legs"][0]
    assert anna_leg["media_path"] == "bypass", anna_leg
    assert anna_leg["sip_call_id"], anna_leg
    assert anna_leg["sip_tag"], anna_leg
    assert call["caller_tag"], call
    # The relay's counters: it received exactly what the caller's network let through.
    assert media is not None, call
    assert media["source"] in ("rtpengine-rtcp", "rtpengine"), call
    dropped = sent - media["rx_packets"]
    assert abs(dropped - sent / 10) <= 3, (media, sent)
    assert anna_leg["media"]["rx_packets"] > 0.95 * sent, anna_leg  # Anna: nothing dropped
    sources = snapshot["media"]["sources"]
    assert sum(sources.values()) == 2, sources
    assert set(sources) <= {"rtpengine-rtcp", "rtpengine"}, sources
    if media["source"] == "rtpengine":
        # No RR of Anna's matched an SR rtpengine saw: no loss figure, no MOS, none made up.
        assert media["rx_loss"] is None, media
        assert media["mos"] is None, media
        return
    # Anna's phone's RTCP (relayed): the caller's audio lost as of its last report
    # (every ~5 s, so it lags the end of the call), and a MOS that shows it.
    assert 0.5 * dropped <= media["rx_loss"] <= dropped + 2, (media, dropped)
    assert media["mos"] is not None, media
    assert media["mos"] < 4.0, media
    loss = snapshot["media"]["loss"]["now"]
    assert loss["p99"] is not None, snapshot["media"]
    assert loss["p99"] >= 0.04, snapshot["media"]
