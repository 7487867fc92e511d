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
