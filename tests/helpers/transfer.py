"""Builders of the transfer tests: the assistant's plan, SIPp callers, transferors, targets."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.ports import LOOPBACK
from tests.helpers.sipp import Sipp
from tests.helpers.worker import WorkerProcess, write_plan

BUSINESS = "+49 30 1234560"
BUSINESS_E164 = "+49301234560"  # the same business as tests.helpers.sipp
CALLER = "+491715550100"


def plan(tmp_path: Path, devices: dict[str, str], outbound: str = "") -> Path:
    people = ", ".join(f'{name}: "sip:{name}@{address}"' for name, address in devices.items())
    return write_plan(
        tmp_path / "plan.yaml",
        f"""
tenant: mueller
name: Tischlerei Müller
numbers: ["{BUSINESS}"]
people:
  jan:
    name: Jan
    devices: {{{people}}}
service:
  heimbuero:
    devices: {{assistant: "sip:assistant@{devices.get("assistant", "127.0.0.1:9")}"}}
{outbound}
rules:
  - name: office
    then:
      - {{ring: [heimbuero.assistant], timeout: 10s}}
""",
    )


def sipp(tmp_path: Path, name: str, scenario: str, *extra: str) -> Sipp:
    return Sipp(tmp_path, name, scenario, ["-m", "1", "-timeout", "20", "-timeout_error", *extra])


def caller(tmp_path: Path, worker: WorkerProcess, hold_ms: int) -> Sipp:
    return sipp(
        tmp_path,
        "caller",
        "uac_call.xml",
        f"{LOOPBACK}:{worker.port}",
        "-s",
        BUSINESS_E164,
        "-key",
        "caller",
        CALLER,
        "-d",
        str(hold_ms),
    )


def transferor(tmp_path: Path, target: str, *, refer_query: str = "") -> Sipp:
    return sipp(
        tmp_path,
        "assistant",
        "uas_answer_refer.xml",
        "-key",
        "target",
        target,
        "-key",
        "refer_query",
        refer_query,
        "-rtp_echo",
    )


def ok(*peers: Sipp, timeout: float = 25.0) -> None:
    for peer in peers:
        assert peer.wait(timeout) == 0, peer.diagnostics()


DTMF_DIR = Path("/usr/share/sip-tester")
EVENT_PT = 120
"""pjsua offers telephone-event/8000 as payload type 120 (its SDP); SIPp's pcaps carry 101."""


def dtmf_pcaps(workdir: Path, keys: list[str], pt: int = EVENT_PT) -> None:
    """SIPp's one-digit RFC 4733 pcaps as ``workdir/pcap/``, ready to be played in a row.

    Each pcap's RTP gets payload type ``pt`` (pjmedia takes events only with its own
    dynamic type, RFC 4733 §2.1) and sequence numbers that keep rising from one digit to
    the next (the captured ones jump back and forth; pjmedia drops a stream that seems to
    restart). The timestamps stay: each digit's are its own, so no event looks repeated.
    """
    (workdir / "pcap").mkdir(exist_ok=True)
    seq = 1000
    for key in keys:
        source = DTMF_DIR / f"dtmf_2833_{key}.pcap"
        data = bytearray(source.read_bytes())
        offset = 24  # the pcap global header; then 16-byte record headers
        while offset + 16 <= len(data):
            length = int.from_bytes(data[offset + 8 : offset + 12], "little")
            frame = offset + 16
            rtp = frame + 14 + (data[frame + 14] & 0x0F) * 4 + 8  # Ethernet, IPv4, UDP
            data[rtp + 1] = (data[rtp + 1] & 0x80) | pt
            data[rtp + 2 : rtp + 4] = seq.to_bytes(2, "big")
            seq += 1
            offset = frame + length
        seq += 10
        (workdir / "pcap" / source.name).write_bytes(bytes(data))
