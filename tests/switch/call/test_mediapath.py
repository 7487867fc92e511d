"""switch/call/mediapath.py: the bypass decision and the SDP rewrite (pure)."""

from __future__ import annotations

from switch.call.mediapath import MediaAddress, audio_formats, bypass_sdp, choose, media_address

CALLER_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
)
CALLEE_ANSWER = (
    "v=0\r\no=- 2 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
    "m=audio 5000 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.3\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
)
PJSUA_SDP = (
    "v=0\r\no=- 3 3 IN IP4 127.0.0.1\r\ns=pjmedia\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 20000 RTP/AVP 8 0 101\r\na=rtcp:20001 IN IP4 127.0.0.1\r\na=sendrecv\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=ssrc:123 cname:x\r\n"
)


def test_media_address_prefers_the_media_level_connection() -> None:
    assert media_address(CALLER_OFFER) == MediaAddress("10.0.0.1", 4000)
    assert media_address(CALLEE_ANSWER) == MediaAddress("10.0.0.3", 5000)
    assert media_address("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n") is None
    assert media_address("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n") is None


def test_choose_keeps_the_callees_codec_and_common_dtmf() -> None:
    plan = choose(True, CALLER_OFFER, CALLEE_ANSWER)
    assert plan is not None
    assert plan.caller_media == MediaAddress("10.0.0.1", 4000)
    assert plan.callee_media == MediaAddress("10.0.0.3", 5000)
    assert plan.formats == ("0", "101")


def test_choose_keeps_the_bridge_when_off_or_codecs_differ() -> None:
    assert choose(False, CALLER_OFFER, CALLEE_ANSWER) is None
    assert choose(True, None, CALLEE_ANSWER) is None
    g722 = CALLEE_ANSWER.replace("RTP/AVP 0 101", "RTP/AVP 9 101")
    assert choose(True, CALLER_OFFER, g722) is None  # the caller cannot speak G.722
    no_dtmf = CALLEE_ANSWER.replace(" 101", "").replace("a=rtpmap:101 telephone-event/8000", "")
    plan = choose(True, CALLER_OFFER, no_dtmf)
    assert plan is not None
    assert plan.formats == ("0",)


def test_bypass_sdp_points_at_the_peer_and_drops_pjsuas_own_attributes() -> None:
    out = bypass_sdp(PJSUA_SDP, MediaAddress("10.0.0.3", 5000), ("0", "101"))
    assert "c=IN IP4 10.0.0.3" in out
    assert "127.0.0.1" not in out.split("o=")[1].split("\n", 1)[1]
    assert "m=audio 5000 RTP/AVP 0 101\r\n" in out
    assert audio_formats(out) == ["0", "101"]
    for gone in ("a=rtpmap:8", "a=rtcp:", "a=ssrc:"):
        assert gone not in out
    for kept in ("a=rtpmap:0 PCMU/8000", "a=fmtp:101 0-16", "a=sendrecv"):
        assert kept in out
    assert media_address(out) == MediaAddress("10.0.0.3", 5000)


def test_tel_targets_keep_the_bridge_for_their_dtmf_transfer_codes() -> None:
    from switch.call.mediapath import may_bypass

    assert may_bypass(True, "sip:jan@127.0.0.1:5080")
    assert not may_bypass(True, "tel:+491711234567")
    assert not may_bypass(False, "sip:jan@127.0.0.1:5080")
