"""What a call record takes of rtpengine's ng ``query`` replies (switch/supervisor/relayfigures.py).

The replies in tests/data/rtpengine/ are real: rtpengine 10.5.3 (userspace) relaying a
bypassed call between two baresip phones (tests/switch/supervisor/test_relay_figures_netns.py),
the caller's audio losing every 10th RTP packet on its way (1,000 sent, 899 arrived).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from switch.call.calllog import CallRecord, LegRecord, MediaStats
from switch.call.recorder import BYPASS
from switch.supervisor.relayfigures import fold, leg_figures, wanted

DATA = Path(__file__).parents[2] / "data" / "rtpengine"
CALLER_TAG = "30e9ec5379a79263"
CALLEE_TAG = "dea4227ca4e06e0c"


def _reply(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"query_bypass_{name}_leg.json").read_text()))


def test_the_callers_figures_are_the_relays_counters_and_the_callees_rtcp() -> None:
    stats = leg_figures(_reply("caller"), CALLER_TAG)
    assert stats is not None
    assert (stats.codec, stats.rx_packets, stats.tx_packets) == ("PCMU", 899, 1033)
    # Anna's phone reported 74 of the caller's packets lost (as of its last report).
    assert (stats.rx_loss, stats.jitter_ms, stats.rtt_ms) == (74, 2.0, 0.162)
    assert stats.source == "rtpengine-rtcp"
    assert stats.mos is not None
    assert 3.0 < stats.mos < 4.0


def test_the_far_party_is_found_without_a_tag_by_its_address() -> None:
    assert leg_figures(_reply("caller"), None) == leg_figures(_reply("caller"), CALLER_TAG)
    callee = leg_figures(_reply("callee"), CALLEE_TAG)
    assert callee is not None
    assert (callee.rx_packets, callee.rx_loss) == (1000, 25)


def test_without_rtcp_reports_there_is_no_loss_and_no_mos() -> None:
    reply = _reply("caller")
    reply["SSRC"] = {}  # what SIPp peers (no RTCP) or a short call leave
    stats = leg_figures(reply, CALLER_TAG)
    assert stats is not None
    assert stats.rx_packets == 899
    assert (stats.rx_loss, stats.jitter_ms, stats.rtt_ms, stats.mos) == (None, None, None, None)
    assert stats.source == "rtpengine"


def test_unknown_calls_and_tags_give_nothing() -> None:
    assert leg_figures({"result": "error", "error-reason": "Unknown call-id"}, None) is None
    assert leg_figures(_reply("caller"), "no-such-tag") is None


def _record() -> CallRecord:
    leg = LegRecord(1, "anna.home", "sip:anna@office", "anna", False, 0, answered_ns=5)
    leg.sip_call_id, leg.sip_tag, leg.media_path = "c2", CALLEE_TAG, BYPASS
    leg.media = MediaStats("PCMU", rx_packets=30, source="pjsua")  # pjsua2's first 600 ms
    bridged = LegRecord(2, "jan.desk", "sip:jan@office", "jan", False, 0)
    bridged.media = MediaStats("PCMU", rx_packets=500, rx_loss=0, source="pjsua")
    record = CallRecord("c1", "t", "+49301234560", None, None, "w1", 0.0, 0)
    record.caller_tag, record.media_path, record.legs = CALLER_TAG, BYPASS, [leg, bridged]
    return record


def test_fold_replaces_only_the_bypassed_legs_figures() -> None:
    record = _record()
    assert wanted(record)
    folded = fold(record, {"c1": _reply("caller"), "c2": _reply("callee")})
    assert folded.media is not None
    assert folded.media.rx_packets == 899
    assert folded.legs[0].media is not None
    assert folded.legs[0].media.rx_packets == 1000
    assert folded.legs[1].media == record.legs[1].media  # bridged: pjsua2's own figures
    # The relay did not answer: the bypassed legs get no figures rather than pjsua2's.
    empty = fold(record, {})
    assert (empty.media, empty.legs[0].media) == (None, None)
    assert empty.legs[1].media == record.legs[1].media
