"""CallRecorder (switch/call/recorder.py): legs' SIP dialogs, the bypass, the figures' source."""

from __future__ import annotations

from rules.decision import Target
from switch.call.calllog import LegDialog, MediaStats
from switch.call.events import CALLER
from switch.call.recorder import BYPASS, CallRecorder


def _recorder() -> CallRecorder:
    recorder = CallRecorder(
        call_id="in-1", called="+49301234560", caller=None, worker="w1",
        started_wall=0.0, invite_in_ns=0,
    )  # fmt: skip
    target = Target(ref="anna.home", uri="sip:anna@office", owner="anna", device="home")
    recorder.dialling(1, target)
    return recorder


def test_dialogs_and_the_bypass_land_on_the_right_legs() -> None:
    recorder = _recorder()
    recorder.dialog(LegDialog(CALLER, "in-1", "caller-tag"))
    recorder.dialog(LegDialog(1, "out-1", "callee-tag"))
    recorder.dialog(LegDialog(7, "nobody", None))  # an unknown leg changes nothing
    recorder.bypassed(1)
    record = recorder.snapshot()
    assert (record.caller_tag, record.media_path) == ("caller-tag", BYPASS)
    leg = record.legs[0]
    assert (leg.sip_call_id, leg.sip_tag, leg.media_path) == ("out-1", "callee-tag", BYPASS)


def test_the_workers_figures_say_they_are_pjsuas() -> None:
    recorder = _recorder()
    recorder.caller_ended(MediaStats("PCMU", rx_packets=500, rx_loss=0))
    assert recorder.record.media is not None
    assert recorder.record.media.source == "pjsua"
    assert recorder.record.media.mos is not None
    recorder.caller_ended(None)
    assert recorder.record.media is None
