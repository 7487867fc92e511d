"""Transfers and calls out, driven in-process against the scripted SIP side (fakes.py).

The real thing against SIPp/baresip: tests/switch/worker/test_transfer_peers.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from switch.worker.driver import CallDriver
from tests.helpers.fakesip import Answer, DriverRig, Fail, HangUp, Ring, Script
from tests.helpers.transfer import mueller_plan

BUSINESS = "+49301234560"
DESK = "sip:desk@10.0.0.1:5060"
MOBILE = "sip:mobile@10.0.0.2:5060"
ASSISTANT = "sip:assistant@10.0.0.3:5060"
TRUNK = "10.0.0.99:5060"

PLAN = mueller_plan(
    {"desk": DESK, "mobile": MOBILE},
    ASSISTANT,
    more="""
outbound:
  business_code: "12"
  people: {jan: [internal, national, mobile]}
  calls_per_hour: 3
""",
    rules="  - {name: office, then: [{ring: [heimbuero.assistant], timeout: 20s}, voicemail]}",
)


class Rig(DriverRig):
    def __init__(self, script: Script, *, max_legs: int = 4, reserve: int = 0) -> None:
        super().__init__(PLAN, script, max_legs=max_legs, reserve=reserve, trunk=TRUNK)

    def handles(self, uri: str) -> list[int]:
        return [h for h, leg in self.sip.legs.items() if leg.uri == uri and not leg.inbound]


def answered_call(rig: Rig) -> tuple[int, int]:
    caller = rig.sip.invite(BUSINESS)
    rig.run()
    return caller, rig.sip.handle_of(ASSISTANT)


def test_blind_transfer_by_refer_bridges_the_caller_to_the_target() -> None:
    rig = Rig({ASSISTANT: [Answer()], MOBILE: [Ring(), Answer(), HangUp()]})
    caller, assistant = answered_call(rig)
    assert ("bridge", caller, assistant) in rig.sip.log
    rig.sip.refer(assistant, "jan.mobile")
    rig.run()
    mobile = rig.sip.handle_of(MOBILE)
    assert ("unbridge", assistant) in rig.sip.log
    assert rig.sip.log.index(("unbridge", assistant)) < rig.sip.log.index(
        ("bridge", caller, mobile)
    )
    assert ("bye", assistant) in rig.sip.log  # the transferor leaves once the target answered
    assert rig.sip.did("reject") == []
    record = rig.ended()
    assert record.outcome == "answered"
    assert record.answered_by == "jan.mobile"  # the minutes count for Jan
    assert record.transferred_by == "heimbuero.assistant"
    assert record.transferred_to == "jan.mobile"
    assert record.transfer_outcome == "answered"
    assert record.hung_up_by == "callee"
    assert rig.sip.legs[caller].ended


def test_a_busy_target_recalls_the_transferor() -> None:
    rig = Rig({ASSISTANT: [Answer()], DESK: [Ring(), Fail(486)]})
    caller, assistant = answered_call(rig)
    rig.sip.refer(assistant, "jan.desk")
    rig.run()
    bridges = rig.sip.did("bridge")
    assert bridges[-1] == ("bridge", caller, assistant)  # back to the assistant
    assert not rig.sip.legs[caller].ended
    rig.sip.caller_hangs_up(caller)
    rig.run()
    record = rig.ended()
    assert record.transfer_outcome == "recalled"
    assert record.answered_by == "heimbuero.assistant"


def test_no_answer_times_out_and_a_gone_transferor_is_rung_again() -> None:
    # The assistant hangs up right after the REFER (a blind transfer): the target does not
    # answer, so the assistant's phone rings again and takes the caller back.
    rig = Rig({ASSISTANT: [Answer()], DESK: [Ring()]})
    caller, assistant = answered_call(rig)
    rig.sip.refer(assistant, "jan.desk")
    rig.run(rounds=1)
    rig.sip.legs[assistant].replies.append(HangUp())
    rig.run()
    assert rig.sip.legs[assistant].ended
    rig.time_passes(26)
    assert ("cancel", rig.sip.handle_of(DESK)) in rig.sip.log
    recall = rig.handles(ASSISTANT)[-1]
    assert recall != assistant
    rig.sip.legs[recall].replies.extend([Answer()])
    rig.run()
    assert rig.sip.did("bridge")[-1] == ("bridge", caller, recall)
    rig.sip.caller_hangs_up(caller)
    rig.run()
    assert rig.ended().transfer_outcome == "recalled"


def test_a_failed_recall_ends_in_the_plans_fallback_without_media_hangs_up() -> None:
    rig = Rig({ASSISTANT: [Answer()], DESK: [Fail(486)]})
    caller, assistant = answered_call(rig)
    rig.sip.refer(assistant, "jan.desk")
    rig.sip.legs[assistant].replies.append(HangUp())
    rig.run(rounds=2)
    recall = rig.handles(ASSISTANT)[-1]
    assert recall != assistant
    rig.sip.legs[recall].replies[:] = [Fail(480, "Temporarily Unavailable")]  # not the script's
    rig.run()
    record = rig.ended()
    assert record.transfer_outcome == "failed"
    assert ("bye", caller) in rig.sip.log  # ended by the switch, never left in silence


def test_transfer_to_nobody_keeps_the_call() -> None:
    rig = Rig({ASSISTANT: [Answer()]})
    caller, assistant = answered_call(rig)
    rig.sip.refer(assistant, "nobody.here")
    rig.run()
    assert rig.sip.did("unbridge") == []
    assert not rig.sip.legs[caller].ended


def test_dtmf_code_transfers_from_a_leg_that_cannot_refer() -> None:
    rig = Rig({ASSISTANT: [Answer()], DESK: [Answer()]})
    caller, assistant = answered_call(rig)
    rig.sip.digits(assistant, "*2desk#".replace("desk", "123"))  # no such extension
    rig.run()
    assert rig.sip.did("unbridge") == []
    rig.sip.digits(assistant, "##0301234567#")
    rig.run()
    trunk_leg = rig.handles(f"sip:+49301234567@{TRUNK}")
    assert trunk_leg  # a number goes out through the trunk
    rig.sip.legs[trunk_leg[0]].replies.append(Answer())
    rig.run()
    assert rig.sip.did("bridge")[-1] == ("bridge", caller, trunk_leg[0])


def test_a_transfer_needs_a_free_leg_else_the_caller_is_recalled() -> None:
    rig = Rig({ASSISTANT: [Answer()], DESK: [Answer()]}, max_legs=2)
    caller, assistant = answered_call(rig)
    rig.sip.refer(assistant, "jan.desk")
    rig.run()
    assert rig.sip.did("bridge")[-1] == ("bridge", caller, assistant)
    assert rig.handles(DESK) == []


# --------------------------------------------------------------------------- calls out


def outbound_rig(script: Script, **kwargs: int) -> Rig:
    return Rig(script, **kwargs)


def the_dial(rig: Rig) -> tuple[str, str, list[tuple[str, str]]]:
    """(request URI, From, headers) of the one INVITE sent."""
    (dial,) = rig.sip.did("dial")
    headers = dial[3]
    assert isinstance(headers, tuple)
    return str(dial[1]), str(dial[2]), [(str(name), str(value)) for name, value in headers]


def test_a_desk_phone_calls_out_with_the_business_number() -> None:
    uri = f"sip:+491711234567@{TRUNK}"
    rig = outbound_rig({uri: [Ring(), Answer(), HangUp()]})
    rig.sip.invite("01711234567", from_uri=DESK)
    rig.run()
    request_uri, from_value, headers = the_dial(rig)
    assert request_uri == uri
    assert "+49301234560" in from_value  # From shows the business
    assert ("P-Asserted-Identity", "<sip:+49301234560@127.0.0.1:5060>") in headers
    record = rig.ended()
    assert record.direction == "outbound"
    assert record.tenant == "mueller"
    assert record.presented == "+49301234560"


def test_privacy_prefix_withholds_the_number() -> None:
    uri = f"sip:+491711234567@{TRUNK}"
    rig = outbound_rig({uri: [Answer()]})
    rig.sip.invite("*31#01711234567", from_uri=DESK)
    rig.run()
    _, from_value, headers = the_dial(rig)
    assert "anonymous" in from_value
    assert ("Privacy", "id") in headers


def test_premium_and_international_are_refused_with_a_reason() -> None:
    rig = outbound_rig({})
    caller = rig.sip.invite("09001234567", from_uri=DESK)
    other = rig.sip.invite("+33123456789", from_uri=DESK)
    rig.run()
    rejects = {r[1]: r for r in rig.sip.did("reject")}
    assert rejects[caller][2] == 403
    assert rejects[caller][3] == "Premium numbers not allowed for jan"
    reason = ("Reason", 'SIP;cause=403;text="Premium numbers not allowed for jan"')
    assert reason in list(rejects[caller][4])  # type: ignore[call-overload]
    assert rejects[other][2] == 403
    assert rig.sip.did("dial") == []


def test_emergency_goes_out_on_a_full_worker_past_every_permission() -> None:
    rig = outbound_rig({ASSISTANT: [Ring()]}, max_legs=4, reserve=2)
    rig.sip.invite(BUSINESS)  # takes 2 legs: with 2 reserved, the worker is full
    rig.run()
    second = rig.sip.invite(BUSINESS)
    rig.run()
    assert [r[1:3] for r in rig.sip.did("reject")] == [(second, 503)]
    rig.sip.invite("112", from_uri=DESK)
    rig.run()
    assert f"sip:112@{TRUNK}" in [d[1] for d in rig.sip.did("dial")]


def test_an_unknown_device_never_dials_out() -> None:
    rig = outbound_rig({})
    caller = rig.sip.invite("01711234567", from_uri="sip:intruder@192.0.2.1")
    rig.run()
    assert [r[1:3] for r in rig.sip.did("reject")] == [(caller, 404)]
    assert rig.sip.did("dial") == []


def test_calls_per_hour_limit_stops_a_stolen_password() -> None:
    rig = outbound_rig({})
    handles = [rig.sip.invite("01711234567", from_uri=DESK) for _ in range(4)]
    rig.run()
    rejects = [r for r in rig.sip.did("reject") if r[1] == handles[3]]
    assert rejects
    assert rejects[0][2] == 403
    assert "Limit reached" in str(rejects[0][3])
    assert len(rig.driver.outbound.limit_hits) == 1


def test_callback_on_behalf_of_a_business_shows_its_number() -> None:
    uri = f"sip:+49301234567@{TRUNK}"
    rig = outbound_rig({uri: [Answer(), HangUp()]})
    rig.sip.invite("*812#0301234567", from_uri=ASSISTANT)
    rig.run()
    _, from_value, _ = the_dial(rig)
    assert "+49301234560" in from_value
    record = rig.ended()
    assert record.tenant == "mueller"
    assert record.direction == "outbound"


def test_an_unknown_business_code_is_refused() -> None:
    rig = outbound_rig({})
    caller = rig.sip.invite("*899#0301234567", from_uri=ASSISTANT)
    rig.run()
    assert [r[1:3] for r in rig.sip.did("reject")] == [(caller, 404)]


class FakeTones:
    """Stands in for switch.pjsua.media.MediaPorts: what plays to which leg."""

    def __init__(self) -> None:
        self.playing: dict[int, tuple[int, list[str]]] = {}
        self.log: list[tuple[str, int]] = []

    def play(self, handle: int, files: list[str]) -> int:
        token = len(self.log) + 1
        self.playing[token] = (handle, files)
        self.log.append(("play", handle))
        return token

    def stop(self, token: int) -> None:
        handle, _ = self.playing.pop(token)
        self.log.append(("stop", handle))

    def ended(self) -> list[object]:
        return []


def test_without_media_services_the_caller_hears_ringback_until_the_target_answers() -> None:
    import wave

    rig = Rig({ASSISTANT: [Answer()], MOBILE: [Ring(), Answer(), HangUp()]})
    tones = FakeTones()
    rig.driver = CallDriver(
        rig.driver.config,
        rig.sip,
        rig.driver.plans,
        rig.driver.budget,
        rig.sent.append,
        clock=lambda: datetime(2026, 11, 25, 10, tzinfo=UTC),
        tones=tones,
    )
    assert rig.driver.ringback is not None
    caller, assistant = answered_call(rig)
    rig.sip.refer(assistant, "jan.mobile")
    for event in rig.sip.poll(0):  # the REFER only: the target has not answered yet
        rig.driver.on_leg_event(event)
        rig.driver.run_pending()
        if tones.playing:
            break
    ((handle, files),) = tones.playing.values()
    assert handle == caller
    with wave.open(files[0], "rb") as tone:  # one cadence: 1 s of 425 Hz + 4 s silence
        assert (tone.getframerate(), tone.getnframes()) == (8000, 5 * 8000)
    rig.run()
    mobile = rig.sip.handle_of(MOBILE)
    assert tones.log == [("play", caller), ("stop", caller)]
    assert ("bridge", caller, mobile) in rig.sip.log
    assert rig.ended().transfer_outcome == "answered"
    rig.driver.ringback.close()
