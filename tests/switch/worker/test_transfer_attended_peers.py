"""Attended transfer (REFER with Replaces, RFC 3891) against SIPp peers and a real worker.

The assistant's phone is two SIPp processes (one per dialog, same user ``assistant``):
``uas_answer_attended.xml`` answers the forwarded call A and later REFERs it with
Replaces naming call B; ``uac_wait_bye.xml`` is her call B to Jan's desk (extension 201)
through the switch, with a Call-ID fixed by ``-cid_str``. Jan's desk and the caller are
SIPp with test-owned RTP sockets: a loud square wave sent from each must reach the other
after the join (neither of the assistant's SIPp sends RTP, so nothing loud flows before).
"""

from __future__ import annotations

import re
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.ports import LOOPBACK
from tests.helpers.processes import running
from tests.helpers.rtp import ALAW, RtpSink, rms
from tests.helpers.sipp import Sipp
from tests.helpers.transfer import (
    BUSINESS_E164,
    CALLER,
    assert_put_through,
    caller,
    mueller_plan,
    ok,
    sipp,
)
from tests.helpers.worker import WorkerProcess, completed_call, write_plan

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(60)]

B_CALL_ID = "attendedB-1"
LOUD = min(range(256), key=lambda b: abs(ALAW[b] - 8000))
QUIET = min(range(256), key=lambda b: abs(ALAW[b] + 8000))
SQUARE = bytes(([LOUD] * 8 + [QUIET] * 8) * 10)  # 500 Hz, 160 samples = 20 ms


class ToneSender:
    """Sends RTP (PCMA, the square wave) from ``sink``'s socket to ``port`` every 20 ms."""

    def __init__(self, sink: RtpSink, port: int) -> None:
        self.sink, self.port = sink, port
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seq, ssrc = 1, 0x5EED0000 + self.port
        while not self.stop.is_set():
            header = struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, seq * 160, ssrc)
            try:
                self.sink.sock.sendto(header + SQUARE, (LOOPBACK, self.port))
            except OSError:
                return
            seq += 1
            time.sleep(0.02)


def audio_port(message: str) -> int:
    found = re.search(r"^m=audio (\d+)", message, re.M)
    assert found is not None, message
    return int(found.group(1))


def loudness(sink: RtpSink, since: float, until: float = float("inf")) -> float:
    samples = [
        ALAW[b] for at, pt, data in sink.packets if pt == 8 and since < at < until for b in data
    ]
    return rms(samples)


def wait_text(peer: Sipp, what: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = peer.received(what)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"{peer.name}: no {what}\n{peer.diagnostics()}")


def attended_assistant(tmp_path: Path, name: str, replaces: str, hold_ms: int) -> Sipp:
    """The assistant's SIPp: answers, then REFERs to 201 with ``Replaces: replaces``."""
    return sipp(
        tmp_path, name, "uas_answer_attended.xml",
        "-key", "target", "201", "-key", "replaces", replaces, "-d", str(hold_ms),
    )  # fmt: skip


def test_refer_with_replaces_joins_the_caller_with_jan_and_drops_both_assistant_legs(
    tmp_path: Path,
) -> None:
    caller_ear, desk_ear = RtpSink(), RtpSink()
    replaces = f"{B_CALL_ID}%3Bto-tag%3Dany%3Bfrom-tag%3Dassistant"
    assistant_a = attended_assistant(tmp_path, "assistant_a", replaces, 2500)
    desk = sipp(tmp_path, "desk", "uas_answer_listen.xml", "-key", "rtp_port", str(desk_ear.port))
    dialplan = write_plan(
        tmp_path / "plan.yaml",
        mueller_plan({"desk": f"sip:201@{desk.address}"}, f"sip:assistant@{assistant_a.address}"),
    )
    worker = WorkerProcess(tmp_path, [dialplan])
    target = f"{LOOPBACK}:{worker.port}"
    call = sipp(
        tmp_path,
        "caller",
        "uac_call_listen.xml",
        target,
        "-s",
        BUSINESS_E164,
        "-key",
        "caller",
        CALLER,
        "-key",
        "rtp_port",
        str(caller_ear.port),
        "-d",
        "6000",
    )
    assistant_b = sipp(
        tmp_path,
        "assistant_b",
        "uac_wait_bye.xml",
        target,
        "-s",
        "201",
        "-key",
        "caller",
        "assistant",
        "-cid_str",
        "attendedB-%u",
    )
    senders: list[ToneSender] = []
    with running(assistant_a, desk, worker, call, assistant_b):
        try:
            for peer in (assistant_a, desk):
                peer.start()
                peer.wait_bound()
            worker.start()
            call.start()
            to_caller_leg = audio_port(wait_text(call, "SIP/2.0 200"))
            assistant_b.start()  # the assistant calls Jan while the caller waits on A
            to_desk_leg = audio_port(wait_text(desk, "INVITE"))
            wait_text(assistant_b, "SIP/2.0 200")
            senders = [ToneSender(caller_ear, to_caller_leg), ToneSender(desk_ear, to_desk_leg)]
            for sender in senders:
                sender.thread.start()
            sending = time.monotonic() + 0.2
            b_ended = worker.wait_for(
                lambda m: m["op"] == "call" and m["phase"] == "ended", timeout=10
            )
            refer_at = time.monotonic()
            joined = refer_at + 0.3
            ok(call, assistant_a, assistant_b, desk)
        finally:
            for sender in senders:
                sender.stop.set()
            caller_ear.close()
            desk_ear.close()
        assert "REFER DECLINED" in assistant_a.log_lines()  # pjsua must not dial it itself
        assert "GOT BYE" in assistant_a.log_lines()  # the switch ended call A's assistant leg
        assert "GOT BYE" in assistant_b.log_lines()  # ... and her call B
        assert "GOT BYE" in desk.log_lines()  # the caller's hang-up reached Jan
        assert len(desk.received("INVITE")) == 1  # nobody dialled Jan again
        # Before the REFER each side is bridged with a silent assistant; after it, each
        # hears the other's square wave.
        assert loudness(desk_ear, sending, refer_at - 0.2) < 300
        assert loudness(caller_ear, sending, refer_at - 0.2) < 300
        assert loudness(desk_ear, joined) > 2000  # the caller's audio reaches Jan
        assert loudness(caller_ear, joined) > 2000  # Jan's audio reaches the caller
        b_record = b_ended["record"]
        assert b_record["call_id"] == B_CALL_ID
        assert b_record["direction"] == "outbound"
        assert b_record["hung_up_by"] == "transfer"
        records = worker.records("ended")
        a_record = next(r for r in records if r["called"] == BUSINESS_E164)
        assert_put_through(
            a_record,
            by="heimbuero.assistant",
            to="jan.desk",
            outcome="attended",
            answered_by="jan.desk",
        )
        assert worker.alive()


def test_replaces_of_an_unknown_dialog_is_refused_and_the_call_stays(tmp_path: Path) -> None:
    # What a REFER naming a dialog of another worker gets: 603, and the caller stays with
    # the assistant until the caller hangs up.
    assistant = attended_assistant(
        tmp_path, "assistant", "elsewhere%40w2%3Bto-tag%3Da%3Bfrom-tag%3Db", 300
    )
    dialplan = write_plan(
        tmp_path / "plan.yaml", mueller_plan(None, f"sip:assistant@{assistant.address}")
    )
    worker = WorkerProcess(tmp_path, [dialplan])
    call = caller(tmp_path, worker, 2000)
    with completed_call(worker, call, assistant, timeout=25):
        assert "REFER DECLINED" in assistant.log_lines()
        record = worker.wait_for(lambda m: m["op"] == "call" and m["phase"] == "ended")["record"]
        assert record["transfer_outcome"] == "failed"
        assert record["answered_by"] == "heimbuero.assistant"
        assert record["hung_up_by"] == "caller"  # not the switch: the call stayed up
