"""One-way audio delay of a real call through the whole switch vs a direct path, in
network namespaces (run as root; ``python -m bench.media_relay --call``).

tests/helpers/netns.py builds the switch's namespace (100.64.0.1) and an office one wired
straight to it (198.51.100.20). ``rufweiche run`` (edge + rtpengine + one pjsua2 worker)
runs in the switch's namespace with a plan that forwards the business number to a
mobile through the trunk, a SIPp UAS on the switch's loopback. A SIPp caller in the office
calls the business; bench/rtpprobe.py sends its audio (20 ms PCMU, a loud frame every
500 ms) to the address of the 200 OK, and another probe at the callee's SDP address
receives it: office → rtpengine (anchors the leg, NAT-latching) → worker (pjsua2 bridge:
jitter buffer, decode, mix, encode) → trunk. "direct": the same probes, office →
switch namespace without anything in between. Both in the same run, one call each.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rtpprobe import delays_ms
from tests.helpers.netns import OFFICE_GW, OFFICE_IP, SWITCH_IP, Net, in_ns, write_switch_files

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = Path(__file__).parent / "scenarios"
BUSINESS = "+4923319876540"
HTTP = "127.0.0.1:8090"
SECONDS = 10.0


def probe(ns: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        in_ns(ns, [sys.executable, "-m", "bench.rtpprobe", *args]),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


Result = dict[str, Any]


def measure(send_ns: str, bind: str, target: str, recv_ns: str, listen: str, tmp: Path) -> Result:
    sent, got = tmp / f"sent-{listen}.json", tmp / f"got-{listen}.json"
    receiver = probe(recv_ns, "recv", listen, str(SECONDS + 1.5), str(got))
    time.sleep(0.5)
    sender = probe(send_ns, "send", bind, target, str(SECONDS), str(sent))
    sender.wait(SECONDS + 10)
    receiver.wait(SECONDS + 10)
    s, g = json.loads(sent.read_text()), json.loads(got.read_text())
    return {"delays": delays_ms(s["loud"], g["loud"]), "sent": s["frames"], "got": g["frames"]}


def write_switch(tmp: Path) -> Path:
    plan = (
        f"tenant: bench\nname: Bench\nnumbers: ['{BUSINESS}']\n"
        "people: {jan: {name: Jan, devices: {mobile: 'tel:+491701234567'}}}\n"
        "rules: [{name: mobile, then: [{ring: [jan.mobile], timeout: 15s}]}]\n"
    )
    edge = {
        # The office caller stands for a trunk (no digest auth in the way).
        "trunk_sources": ["127.0.0.0/8", f"{OFFICE_IP}/32"],
        "media_relay": {"ng_listen": "127.0.0.1:2226", "delete_delay": 0},
        "log_level": 1,  # Kamailio's default: no info lines in the measured path
    }
    return write_switch_files(tmp, plan, {}, edge, http=HTTP, trunk="127.0.0.1:5090")


def start_switch(net: Net, tmp: Path) -> subprocess.Popen[bytes]:
    log = (tmp / "switch.log").open("wb")
    argv = [sys.executable, "-m", "switch", "run", "--settings", str(write_switch(tmp))]
    proc = subprocess.Popen(
        in_ns(net.switch, argv),
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(
            in_ns(net.switch, ["curl", "-s", f"http://{HTTP}/healthz"]),
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout  # fmt: skip
        if '"ready": true' in out:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    raise SystemExit("switch not ready:\n" + (tmp / "switch.log").read_text()[-3000:])


def sipp(
    ns: str, tmp: Path, name: str, ip: str, port: int, args: list[str]
) -> subprocess.Popen[bytes]:
    cmd = ["sipp", "-i", ip, "-p", str(port), "-nostdin", "-trace_msg",
           "-message_file", str(tmp / f"{name}_msgs.log"), *args]  # fmt: skip
    return subprocess.Popen(
        in_ns(ns, cmd), cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def answer_address(messages: Path, timeout: float = 10) -> str:
    """Where the caller must send: c= and m= of the 200 OK it received (rtpengine's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = messages.read_text(errors="replace") if messages.exists() else ""
        answer = re.search(r"^SIP/2\.0 200 OK.*?^v=0(.*?)(?:\n\s*\n|\Z)", text, re.S | re.M)
        if answer:
            host = re.findall(r"^c=IN IP4 ([0-9.]+)", answer.group(1), re.M)
            port = re.search(r"^m=audio (\d+)", answer.group(1), re.M)
            if host and port:
                return f"{host[-1]}:{port.group(1)}"  # the media-level c= wins
        time.sleep(0.1)
    raise SystemExit(f"no 200 OK with SDP in {messages}")


def call(net: Net, tmp: Path) -> Result:
    """One call office → switch → trunk; the probes at the caller's and callee's SDP."""
    assert net.office is not None
    got, sent = tmp / "got-call.json", tmp / "sent-call.json"
    receiver = probe(net.switch, "recv", "127.0.0.1:40020", str(SECONDS + 4), str(got))
    uas = ["-sf", str(SCENARIOS / "delay_uas.xml"), "-m", "1", "-timeout", "40",
           "-key", "rtpip", "127.0.0.1", "-key", "rtpport", "40020"]  # fmt: skip
    callee = sipp(net.switch, tmp, "callee", "127.0.0.1", 5090, uas)
    time.sleep(0.5)
    uac = ["-sf", str(SCENARIOS / "delay_uac.xml"), "-m", "1", "-timeout", "40",
           "-s", BUSINESS, "-key", "caller", "+491715550100", "-key", "rtpip", OFFICE_IP,
           "-key", "rtpport", "40030", "-d", str(int((SECONDS + 2) * 1000)),
           f"{SWITCH_IP}:5060"]  # fmt: skip
    caller = sipp(net.office, tmp, "caller", OFFICE_IP, 5060, uac)
    target = answer_address(tmp / "caller_msgs.log")
    sender = probe(net.office, "send", f"{OFFICE_IP}:40030", target, str(SECONDS), str(sent))
    sender.wait(SECONDS + 10)
    receiver.wait(SECONDS + 10)
    caller.wait(30)
    callee.wait(30)
    s, g = json.loads(sent.read_text()), json.loads(got.read_text())
    return {"delays": delays_ms(s["loud"], g["loud"]), "sent": s["frames"], "got": g["frames"]}


def run() -> dict[str, Result]:
    with tempfile.TemporaryDirectory(prefix="calldelay") as name:
        tmp = Path(name)
        net = Net()
        try:
            net.build()
            office = net.add_office()
            direct = measure(
                office, f"{OFFICE_IP}:40000", f"{OFFICE_GW}:40010",
                net.switch, f"{OFFICE_GW}:40010", tmp,
            )  # fmt: skip
            switch = start_switch(net, tmp)
            try:
                through = call(net, tmp)
            finally:
                switch.terminate()
                switch.wait(20)
        finally:
            net.close()
    return {"direct": direct, "call": through}


def report(results: dict[str, Result]) -> None:
    def q(values: list[float], p: int) -> float:
        return statistics.quantiles(values, n=100)[p - 1] if len(values) > 2 else float("nan")

    print(f"\none-way audio delay of a real call, {SECONDS:.0f} s, loud frame every 500 ms")
    print("(office ns -> switch ns; same run; CLOCK_MONOTONIC at both probes)")
    print(f"{'path':<44}{'frames':>12}{'loud':>6}{'p50 ms':>9}{'max ms':>9}")
    rows = (
        ("direct (veth, nothing in between)", results["direct"]),
        ("call: rtpengine -> pjsua2 worker -> trunk", results["call"]),
    )
    for label, r in rows:
        d = r["delays"]
        frames, top = f"{r['got']}/{r['sent']}", max(d, default=float("nan"))
        print(f"{label:<44}{frames:>12}{len(d):>6}{q(d, 50):>9.2f}{top:>9.2f}")
    added = q(results["call"]["delays"], 50) - q(results["direct"]["delays"], 50)
    print(f"{'added by the switch (p50)':<44}{'':>12}{'':>6}{added:>9.2f}")


if __name__ == "__main__":
    report(run())
