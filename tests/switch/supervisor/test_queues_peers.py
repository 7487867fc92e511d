"""Queues of the secretarial service against real peers (issue 19).

The switch runs with three workers behind the Kamailio edge (``rufweiche run --settings``
with a ``queues:`` section). Callers are SIPp UACs whose SDP names a test-owned UDP socket
(:class:`tests.helpers.rtp.RtpSink`): what the switch plays to a waiting caller arrives there
as RTP and is decoded (G.711 A-law). Members are SIPp UASs that answer, talk for a while
and hang up. Prompts are made in advance into the switch's data dir, so the first call
finds them ready.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.helpers.processes import running
from tests.helpers.queues import (
    OTHER_E164,
    digit_caller,
    first_seconds_level,
    members_yaml,
    post_json,
    queue_callers,
    queue_calls_metric,
    settings,
    start,
    voiced_seconds,
)
from tests.helpers.rtp import RtpSink
from tests.helpers.sipp import BUSINESS_E164, caller, start_bound, target

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(110)]


def test_callers_wait_hear_their_place_and_are_answered_in_order(tmp_path: Path) -> None:
    # Two members talk 4 s each; seven callers, 0.4 s apart (all in before the first two
    # calls end): two are put through at once, five wait.
    # (How the five split between them is timing: each SIPp member takes up to all.)
    anna = target(tmp_path, "anna", "uas_member.xml", "-d", "4000", calls=7, timeout=80)
    ben = target(tmp_path, "ben", "uas_member.xml", "-d", "4000", calls=7, timeout=80)
    switch = start(
        tmp_path,
        settings(
            tmp_path,
            members_yaml(("anna", anna, ""), ("ben", ben, "")),
            workers=4,  # the edge gives each worker 2 calls: 7 callers need 4
            strategy="longest_idle",
            wrapup="1",
            ring_timeout="8s",
        ),
        workers=4,
    )
    numbers = [f"+4917155501{n:02d}" for n in range(1, 8)]
    callers, sinks = queue_callers(tmp_path, switch, numbers, timeout=80)
    try:
        with running(switch, anna, ben, *callers):
            start_bound(anna, ben)
            for call in callers:
                call.start()
                time.sleep(0.4)
            # Both members talk now; five callers wait, in the order they came.
            snapshot = switch.wait_until(
                lambda: (s := switch.get("/api/v1/queues"))["queues"]["heimbuero"]["waiting"]
                and len(s["queues"]["heimbuero"]["waiting"]) == 5
                and s,
                5,
                "five callers waiting",
            )
            queue = snapshot["queues"]["heimbuero"]
            assert {m["status"] for m in queue["members"].values()} == {"on_call"}
            waited = [w["waited_s"] for w in queue["waiting"]]  # first in line waited longest
            assert waited == sorted(waited, reverse=True), queue["waiting"]
            for call in callers:
                assert call.wait(60) == 0, call.diagnostics()
            queues = switch.get("/api/v1/queues")
            metrics = switch.text("/metrics")
            records = switch.calls()
    finally:
        for sink in sinks:
            sink.close()

    # Answered in the order they came: c1 anna, c2 ben (both free, anna idle longest);
    # then each member takes the next in line when she is free again, so each one's
    # callers come in order and together they are everyone. Who gets c5..c7 depends on
    # which 4 s call ends first; the metrics below must count the same split.
    answered = {
        name: [
            n
            for n in numbers
            for line in sipp.log_lines()
            if "MEMBER ANSWERED" in line and n in line
        ]
        for name, sipp in (("anna", anna), ("ben", ben))
    }
    assert (answered["anna"][0], answered["ben"][0]) == (numbers[0], numbers[1]), answered
    assert all(calls == sorted(calls) for calls in answered.values()), answered
    assert sorted(answered["anna"] + answered["ben"]) == numbers, answered
    # The five who waited heard their place (a spoken announcement first) and music; the
    # first two were connected at once and heard next to nothing.
    for n in range(2, 7):
        assert voiced_seconds(sinks[n]) > 2.0, (n, voiced_seconds(sinks[n]))
        assert first_seconds_level(sinks[n], 1.5) > 300
    for n in (0, 1):
        assert voiced_seconds(sinks[n]) < voiced_seconds(sinks[2]) / 2
    # The figures match what the test counted.
    figures = queues["queues"]["heimbuero"]["figures"]["by_tenant"]["tischlerei"]
    assert figures["answered"] == 7
    assert figures["abandoned"] == 0
    assert figures["within_service_level"] == 7  # nobody waited 20 s
    assert queue_calls_metric(metrics, "answered", "tischlerei") == 7
    for member, calls in answered.items():
        line = f'rufweiche_queue_member_calls_total{{member="{member}",queue="heimbuero"}}'
        assert f"{line} {len(calls)}.0" in metrics, (member, calls)
    assert re.search(
        r'rufweiche_queue_wait_seconds_count\{queue="heimbuero",tenant="tischlerei"\} 7', metrics
    )
    assert sorted(r["outcome"] for r in records) == ["answered"] * 7


def test_longest_idle_picks_the_member_idle_longest_not_the_first_listed(
    tmp_path: Path,
) -> None:
    # anna is listed first and takes the first call; when the second caller comes both are
    # free, but ben has been idle since the start: longest idle rings ben.
    # anna could take a second call (her SIPp stays up): a wrong pick would reach her.
    anna = target(tmp_path, "anna", "uas_member.xml", "-d", "1000", calls=2, timeout=30)
    ben = target(tmp_path, "ben", "uas_member.xml", "-d", "1000", calls=1, timeout=30)
    members = members_yaml(("anna", anna, ""), ("ben", ben, ""))
    switch = start(tmp_path, settings(tmp_path, members, strategy="longest_idle", wrapup="0"))
    callers, sinks = queue_callers(
        tmp_path, switch, [f"+4917155505{n:02d}" for n in range(2)], timeout=30
    )
    try:
        with running(switch, anna, ben, *callers):
            start_bound(anna, ben)
            callers[0].start()
            assert callers[0].wait(15) == 0, callers[0].diagnostics()  # anna talked, hung up
            members_now = switch.get("/api/v1/queues")["queues"]["heimbuero"]["members"]
            assert {m: v["status"] for m, v in members_now.items()} == {
                "anna": "available",
                "ben": "available",
            }
            callers[1].start()
            assert callers[1].wait(15) == 0, callers[1].diagnostics()
    finally:
        for sink in sinks:
            sink.close()
    anna_calls = [line for line in anna.log_lines() if "MEMBER ANSWERED" in line]
    ben_calls = [line for line in ben.log_lines() if "MEMBER ANSWERED" in line]
    assert len(anna_calls) == 1
    assert "+491715550500" in anna_calls[0]
    assert len(ben_calls) == 1
    assert "+491715550501" in ben_calls[0]
    assert len(anna.received("INVITE")) == 1  # the second caller never rang anna


def test_skill_pause_max_wait_and_callback(tmp_path: Path) -> None:
    # anna may answer only the Tischlerei; ben only the Praxis. A caller over the trunk
    # dialling *47 with ben's name is refused at the edge (the member codes are no public
    # numbers); ben then pauses over HTTP.
    anna = target(tmp_path, "anna", "uas_member.xml", "-d", "1000", calls=1, timeout=60)
    ben = target(tmp_path, "ben", "uas_member.xml", "-d", "1000", calls=1, timeout=60)
    switch = start(
        tmp_path,
        settings(
            tmp_path,
            members_yaml(
                ("anna", anna, ", skills: {tischlerei: 1}"),
                ("ben", ben, ", skills: {praxis: 1}"),
            ),
            max_wait="4s",
            wrapup="0",
            callback_digit='"5"',
        ),
    )
    pause = caller(
        tmp_path, switch.sip_port, "uac_final.xml", name="pause", service="*47", caller="ben"
    )
    praxis_sink, digit_sink = RtpSink(), RtpSink()
    praxis = caller(
        tmp_path,
        switch.sip_port,
        "uac_queue_listen.xml",
        name="praxis",
        service=OTHER_E164,
        caller="+491715550201",
        rtp_port=praxis_sink.port,
        timeout=40,
    )
    digit = digit_caller(tmp_path, switch, "+491715550202", digit_sink)
    try:
        with running(switch, anna, ben, pause, praxis, digit):
            start_bound(anna, ben)
            pause.start()
            assert pause.wait(15) == 0, pause.diagnostics()
            assert pause.received("SIP/2.0 404"), pause.diagnostics()  # the trunk: refused
            status = switch.get("/api/v1/queues")["queues"]["heimbuero"]["members"]
            assert status["ben"]["status"] == "available"
            result = post_json(switch, "/api/v1/queues/heimbuero/members/ben", {"action": "pause"})
            assert result["status"] == "paused"  # at once
            # anna pauses over HTTP; a Praxis caller waits: anna may not take it, ben pauses.
            result = post_json(switch, "/api/v1/queues/heimbuero/members/anna", {"action": "pause"})
            assert result["status"] == "paused"
            praxis.start()
            digit.start()  # a Tischlerei caller, anna paused: it waits, then presses 5
            assert digit.wait(30) == 0, digit.diagnostics()
            assert praxis.wait(30) == 0, praxis.diagnostics()  # voicemail after max wait
            queues = switch.get("/api/v1/queues")
            records = {r["called"]: r for r in switch.calls()}
            anna_invites = anna.received("INVITE")
            ben_invites = ben.received("INVITE")
    finally:
        praxis_sink.close()
        digit_sink.close()
    assert anna_invites == []  # never rung for the Praxis: the skill, then her pause
    assert ben_invites == []  # paused
    praxis_record = records[OTHER_E164]
    assert praxis_record["final_action"] == "voicemail"
    digit_record = records[BUSINESS_E164]
    assert digit_record["final_action"] == "callback"
    (request,) = queues["callbacks"]
    assert (request["number"], request["tenant"]) == ("+491715550202", "tischlerei")
    figures = queues["queues"]["heimbuero"]["figures"]["by_tenant"]
    assert figures["praxis"]["overflow"] == 1
    assert figures["tischlerei"]["callback"] == 1
    assert voiced_seconds(praxis_sink) > 2.0  # announcement, music, then the greeting
