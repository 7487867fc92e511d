"""Builders of the transfer tests: the assistant's plan, SIPp callers, transferors, targets."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.helpers.ports import LOOPBACK
from tests.helpers.sipp import Sipp
from tests.helpers.worker import WorkerProcess, write_plan

BUSINESS = "+49 30 1234560"
BUSINESS_E164 = "+49301234560"  # the same business as tests.helpers.sipp
CALLER = "+491715550100"


OFFICE = "  - {name: office, then: [{ring: [heimbuero.assistant], timeout: 10s}]}"


def mueller_plan(
    jan: Mapping[str, str] | None,
    assistant: str | None = None,
    *,
    people: str = "",
    more: str = "",
    rules: str = OFFICE,
) -> str:
    """The plan of Tischlerei Müller (the business number): Jan with the ``jan`` devices
    (name → URI; None: no Jan), the ``people`` lines after him, the ``heimbuero`` service
    with its ``assistant`` URI (None: no service), ``more`` top-level YAML (outbound:
    ...), and the ``rules`` lines (by default the office: ring the assistant for 10 s)."""
    lines = ["tenant: mueller", "name: Tischlerei Müller", f'numbers: ["{BUSINESS}"]']
    if jan is not None or people:
        lines.append("people:")
    if jan is not None:
        devices = ", ".join(f'{name}: "{uri}"' for name, uri in jan.items())
        lines.append(f"  jan: {{name: Jan, devices: {{{devices}}}}}")
    if people:
        lines.append(textwrap.indent(textwrap.dedent(people).strip("\n"), "  "))
    if assistant is not None:
        lines.append(f'service:\n  heimbuero: {{devices: {{assistant: "{assistant}"}}}}')
    if more:
        lines.append(textwrap.dedent(more).strip("\n"))
    return "\n".join([*lines, "rules:", rules]) + "\n"


def plan(tmp_path: Path, devices: dict[str, str], outbound: str = "") -> Path:
    """``mueller_plan`` as ``tmp_path/plan.yaml``: Jan's devices and the assistant as
    ``sip:NAME@ADDRESS`` (no assistant address: 127.0.0.1:9, where nobody answers)."""
    jan = {name: f"sip:{name}@{address}" for name, address in devices.items()}
    assistant = f"sip:assistant@{devices.get('assistant', '127.0.0.1:9')}"
    return write_plan(tmp_path / "plan.yaml", mueller_plan(jan, assistant, more=outbound))


def mueller_worker(tmp_path: Path, *devices: Sipp, **options: Any) -> WorkerProcess:
    """A worker on :func:`plan` whose devices (Jan's, and the assistant) are the SIPp
    ``devices``, each by its name; ``options`` go to :class:`WorkerProcess` (trunk, port)."""
    dialplan = plan(tmp_path, {peer.name: peer.address for peer in devices})
    return WorkerProcess(tmp_path, [dialplan], **options)


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


def assert_put_through(
    record: dict[str, Any], *, by: str, to: str, outcome: str, answered_by: str
) -> None:
    """The ended call's record: ``by`` put it through to ``to`` (``outcome``), the caller
    talked with ``answered_by`` (whose leg carried audio) and hung up."""
    assert record["transferred_by"] == by
    assert record["transferred_to"] == to
    assert record["transfer_outcome"] == outcome
    assert record["answered_by"] == answered_by
    assert record["hung_up_by"] == "caller"
    leg = next(leg for leg in record["legs"] if leg["target"] == answered_by)
    assert leg["media"]["rx_packets"] > 0, leg["media"]  # audio came back from the target
