"""A TLS + SRTP phone talks to an RTP-only trunk, and the reverse (issue 15).

Real peers in network namespaces (tests/helpers/netns.py): the switch (``rufweiche run``:
Kamailio edge with a TLS listener + one pjsua2 worker + rtpengine) on 100.64.0.1; the
assistant's baresip behind the home router, registered over TLS (a CA and certificate
the test makes with ``openssl``) with ``mediaenc srtp-mand``: it sends and accepts only
RTP/SAVP with SDES keys (``a=crypto``), and drops every packet that is not SRTP with
those keys. The trunk is SIPp on the switch host's loopback, plain RTP/AVP, echoing the
audio it gets: so audio counted back at the phone has gone phone → rtpengine (SRTP → RTP)
→ worker → trunk → worker → rtpengine (RTP → SRTP) → phone.

- trunk → phone: the trunk calls the business number, the plan rings her phone;
- phone → trunk: she dials the second number, the plan forwards it to a mobile (tel:),
  which leaves through the trunk.

The SDP of the TLS side is read from baresip's own SIP trace (``-s``: after TLS), the trunk
side from SIPp's message log.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import netns
from tests.helpers.netns import PHONE_IP, SWITCH_IP, Net
from tests.helpers.processes import poll_until, stop_process
from tests.helpers.sipp import BUSINESS_E164, Sipp

pytestmark = netns.marks("openssl")

SECOND = "+4923319876541"  # forwarded to the mobile through the trunk
MOBILE = "+491701234567"
TRUNK_PORT = 5090


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certs(tmp: Path) -> tuple[Path, Path, Path]:
    """A test CA and the edge's certificate for its IP (subjectAltName IP:100.64.0.1)."""
    ca_key, ca, key, csr, cert = (
        tmp / n for n in ("ca.key", "ca.pem", "edge.key", "edge.csr", "edge.pem")
    )
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=Rufweiche Test CA", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={SWITCH_IP}",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ext = tmp / "san.ext"
    ext.write_text(f"subjectAltName=IP:{SWITCH_IP}\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    key.chmod(0o600)
    return ca, cert, key


def write_switch(tmp: Path, cert: Path, key: Path) -> Path:
    """The switch's files; anna's phone must use TLS + SRTP (``require_encryption``)."""
    return netns.write_switch_files(
        tmp,
        netns.anna_plan(
            f"""
- name: second number to jan's mobile
  when: {{called: "{SECOND}"}}
  then: [{{ring: [jan.mobile], timeout: 15s}}]
{netns.TO_ANNA}""",
            people=f'jan: {{name: Jan, devices: {{mobile: "tel:{MOBILE}"}}}}',
            numbers=(BUSINESS_E164, SECOND),
        ),
        {"anna": "pw"},
        {
            "tls_listen": f"{SWITCH_IP}:5061",
            "tls_cert": str(cert),
            "tls_key": str(key),
            "require_encryption": ["anna"],
            "media_relay": {"ng_listen": "127.0.0.1:2224", "delete_delay": 0},
        },
        trunk=f"127.0.0.1:{TRUNK_PORT}",
    )


def start_phone(
    net: Net, tmp: Path, ca: Path, *, secure: bool = True
) -> tuple[subprocess.Popen[bytes], Path]:
    """baresip over TLS with mandatory SRTP (``secure``; else UDP and plain RTP); commands
    on its ctrl_tcp port 4450."""
    account = (
        f"<sip:anna@{SWITCH_IP};transport=tls>;auth_pass=pw;regint=300;answermode=auto;"
        "audio_codecs=PCMU;mediaenc=srtp-mand"
        if secure
        else f"<sip:anna@{SWITCH_IP}>;auth_pass=pw;regint=300;answermode=auto;audio_codecs=PCMU"
    )
    # TLS on 5061 (PEERS.md)
    return netns.start_baresip(
        net.phone, tmp, "anna", PHONE_IP, account,
        ctrl=4450, config=(f"sip_cafile\t{ca}",), modules=("srtp.so",), flags=("-s",),
    )  # fmt: skip


def ctrl(net: Net, command: str, params: str = "") -> None:
    """One ctrl_tcp command (netstring JSON) to the phone."""
    script = (
        "import json,socket,sys\n"
        f"s=socket.create_connection(('{PHONE_IP}',4450),timeout=3)\n"
        "m=json.dumps({'command':sys.argv[1],'params':sys.argv[2],'token':'t'}).encode()\n"
        "s.sendall(str(len(m)).encode()+b':'+m+b',');s.recv(4096)\n"
    )
    netns.sh("python3", "-c", script, command, params, ns=net.phone)


def sdp_blocks(text: str, start_line: str) -> list[str]:
    """The SDP bodies of the SIP messages in ``text`` whose start line matches (headers
    up to the first empty line, then the body's ``x=`` lines)."""
    found = []
    for match in re.finditer(rf"^(?:{start_line}).*?\r?\n\r?\n", text, re.S | re.M):
        if "application/sdp" not in match.group(0).lower():
            continue
        lines = []
        for line in text[match.end() :].splitlines():
            if not re.match(r"^[a-z]=", line):
                break
            lines.append(line)
        found.append("\n".join(lines))
    return found


def assert_srtp(sdp: str) -> None:
    assert re.search(r"^m=audio \d+ RTP/SAVP ", sdp, re.M), sdp
    assert re.search(r"^a=crypto:\d+ AES_CM_128_HMAC_SHA1_(80|32) inline:", sdp, re.M), sdp
    assert "127.0.0.1" not in sdp


def assert_srtp_offer_and_answer(phone_log: str, invite: str) -> None:
    """The phone's side of one call: the first INVITE matching ``invite`` and the first 200
    carry SRTP."""
    for start_line in (invite, r"SIP/2\.0 200 "):
        sdps = sdp_blocks(phone_log, start_line)
        assert sdps, phone_log[-3000:]
        assert_srtp(sdps[0])


def assert_plain(sdp: str) -> None:
    assert re.search(r"^m=audio \d+ RTP/AVP ", sdp, re.M), sdp
    assert "a=crypto" not in sdp, sdp


@pytest.mark.timeout(110)
def test_tls_srtp_phone_and_rtp_only_trunk_both_ways(net: Net, tmp_path: Path) -> None:
    ca, cert, key = make_certs(tmp_path)
    switch = netns.start_switch(net, tmp_path, write_switch(tmp_path, cert, key))
    phone, phone_log = start_phone(net, tmp_path, ca)
    sipps: list[Sipp] = []
    try:
        netns.wait_log(phone_log, r"200 OK.*\[1 binding\]", 15)
        # 1. The RTP-only trunk calls her number; she answers over TLS with SRTP.
        trunk_in = netns.trunk_caller(net, tmp_path, "trunk_in", "-rtp_echo")
        sipps.append(trunk_in)
        mark = len(phone_log.read_text(errors="replace"))
        trunk_in.start()
        assert trunk_in.wait(30) == 0, trunk_in.diagnostics()
        first = netns.wait_log(phone_log, r"packets:", 10, mark)

        # 2. She dials the second number: to the mobile through the RTP-only trunk.
        trunk_out = Sipp(
            tmp_path, "trunk_out", "uas_answer.xml",
            ["-m", "1", "-timeout", "30", "-rtp_echo"], port=TRUNK_PORT,
        )  # fmt: skip
        trunk_out.cmd = netns.in_ns(net.switch, trunk_out.cmd)
        sipps.append(trunk_out)
        trunk_out.start()
        time.sleep(0.5)  # SIPp binds its port
        mark = len(phone_log.read_text(errors="replace"))
        ctrl(net, "dial", f"sip:{SECOND}@{SWITCH_IP}")
        netns.wait_log(phone_log, r"(?i)call established", 15, mark)
        time.sleep(4)
        ctrl(net, "hangup")
        second = netns.wait_log(phone_log, r"packets:", 10, mark)
        assert trunk_out.wait(15) == 0, trunk_out.diagnostics()
    finally:
        for sipp in sipps:
            sipp.stop()
        stop_process(phone)
        stop_process(switch, grace=10)

    # Call 1: the offer she got (over TLS) is SRTP, her answer too; the trunk saw plain RTP.
    assert_srtp_offer_and_answer(first, r"INVITE sip:anna")
    trunk_text = trunk_in.message_text()
    for sdp in sdp_blocks(trunk_text, r"(INVITE sip:|SIP/2\.0 200 )"):
        assert_plain(sdp)
    tx, rx = netns.rtp_counts(first)
    assert tx > 100, "the phone sent SRTP"
    assert rx > 100, "SRTP came back: the trunk's echo, encrypted by rtpengine"

    # Call 2: she offered SRTP; the trunk got RTP/AVP without keys; she got SRTP back.
    assert_srtp_offer_and_answer(second, r"INVITE sip:")
    out_text = trunk_out.message_text()
    plain = sdp_blocks(out_text, r"(INVITE sip:|SIP/2\.0 200 )")
    assert len(plain) >= 2, out_text[-3000:]
    for sdp in plain:
        assert_plain(sdp)
    tx, rx = netns.rtp_counts(second)
    assert tx > 100, "the phone sent SRTP"
    assert rx > 100, "SRTP came back from the RTP-only trunk's echo"


def call_rows(tmp: Path) -> list[dict[str, Any]]:
    db = tmp / "var" / "calls.sqlite3"
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        calls = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")]
        for call in calls:
            call["legs"] = [
                dict(r)
                for r in conn.execute("SELECT * FROM legs WHERE call_row = ?", (call["id"],))
            ]
    return calls


def wait_rows(tmp: Path, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    def ended() -> list[dict[str, Any]]:
        if not (tmp / "var" / "calls.sqlite3").exists():
            return []
        return [r for r in call_rows(tmp) if r["outcome"] is not None]

    return poll_until(ended, lambda rows: len(rows) >= count, timeout, f"{count} ended calls", 0.3)


@pytest.mark.timeout(100)
def test_a_plain_call_from_and_to_a_device_that_must_encrypt_is_refused_and_recorded(
    net: Net, tmp_path: Path
) -> None:
    """anna's phone must use TLS + SRTP; today it registered over UDP with plain RTP."""
    ca, cert, key = make_certs(tmp_path)
    switch = netns.start_switch(net, tmp_path, write_switch(tmp_path, cert, key))
    phone, phone_log = start_phone(net, tmp_path, ca, secure=False)
    trunk_in: Sipp | None = None
    try:
        netns.wait_log(phone_log, r"200 OK.*\[1 binding\]", 15)
        # From her: she dials the business's second number; the worker refuses and records.
        mark = len(phone_log.read_text(errors="replace"))
        ctrl(net, "dial", f"sip:{SECOND}@{SWITCH_IP}")
        refused = netns.wait_log(phone_log, r"SIP/2\.0 488 ", 15, mark)
        (rejected,) = wait_rows(tmp_path, 1)
        # To her: the trunk calls the business number, the plan rings her plain phone.
        trunk_in = netns.trunk_caller(net, tmp_path, "trunk_in", hold_ms=1000)
        trunk_in.start()
        assert trunk_in.wait(30) != 0, "the call to her must not be answered"
        rows = wait_rows(tmp_path, 2)
    finally:
        if trunk_in is not None:
            trunk_in.stop()
        stop_process(phone)
        stop_process(switch, grace=10)
    answer = re.search(r"^SIP/2\.0 488 .*?(?=\r?\n\r?\n)", refused, re.S | re.M)
    assert answer, refused[-3000:]
    assert answer.group(0).startswith("SIP/2.0 488 Encryption required")
    assert re.search(
        r'^Reason: SIP;cause=488;text="Encryption required: TLS and SRTP"', answer.group(0), re.M
    ), answer.group(0)
    assert "Call established" not in refused[: refused.find("SIP/2.0 488")]
    # The record of her call: rejected by the switch, 488, and why.
    assert rejected["tenant"] == "buero-anna"
    assert rejected["called"] == SECOND
    assert (rejected["outcome"], rejected["sip_status"]) == ("rejected", 488)
    assert rejected["reason"] == "Encryption required: TLS and SRTP"
    assert rejected["legs"] == []  # nobody was dialled
    # The record of the call to her: the leg to her phone ended 488 with the edge's reason.
    (to_her,) = [r for r in rows if r["called"] == BUSINESS_E164]
    (leg,) = to_her["legs"]
    assert leg["target"] == "anna.home", leg
    assert leg["status"] == 488, leg
    assert "Encryption required" in str(leg["reason"]), leg
    assert to_her["outcome"] != "answered"
    switch_log = (tmp_path / "switch.log").read_text(errors="replace")
    assert "encryption required, 488" in switch_log, switch_log[-3000:]
