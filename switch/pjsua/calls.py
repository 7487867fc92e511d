"""pjsua2 Call subclasses: each callback copies what it needs into a frozen leg event.

The callbacks run on the endpoint thread inside ``libHandleEvents``. They never answer,
never block and never raise into pjsua2 (a C++ director exception can abort the process):
everything is wrapped, logged and dropped. Stream statistics are read in the DISCONNECTED
callback, the last moment the media session still exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pjsua2 as pj

from switch.call.calllog import MediaStats
from switch.call.mediapath import MediaAddress, bypass_sdp
from switch.call.sipheaders import (
    header_tag,
    header_values,
    parse_name_addr,
    request_uri,
    uri_user,
)
from switch.worker.seam import (
    IncomingInvite,
    LegConnected,
    LegDigit,
    LegEnded,
    LegEvent,
    LegProgress,
    LegTransferRequested,
)

log = logging.getLogger("switch.pjsua")

DISCARD = "127.0.0.1:9"
"""Where a bypassed leg's RTCP goes: the discard port, never a peer."""

_AUDIO_LIVE = frozenset(
    {pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD}
)


def sdp_body(whole: str) -> str | None:
    """The SDP body of a whole SIP message, if it carries one."""
    head, _, body = whole.partition("\r\n\r\n")
    if "v=0" in body[:8] and "application/sdp" in head.lower():
        return body
    return None


def _rx_sdp(prm: Any) -> str | None:
    """The SDP of the message behind a call-state event (18x or 200 with SDP)."""
    whole = _rx_message(prm)
    return sdp_body(whole) if whole is not None else None


def _rx_message(prm: Any) -> str | None:
    """The whole SIP message behind a call-state event, if one was received."""
    try:
        event = prm.e
        if event.type != pj.PJSIP_EVENT_TSX_STATE:
            return None
        tsx_state = event.body.tsxState
        if tsx_state.type != pj.PJSIP_EVENT_RX_MSG:
            return None
        return str(tsx_state.src.rdata.wholeMsg)
    except Exception:  # a foreign object we cannot read: assume no message
        return None


REFER_TAKEN_OVER = 603
"""What pjsua answers a REFER with once the switch has taken the transfer over.

pjsua 2.15 (pjsua_call.c, ``on_call_transferred``) answers a REFER that the application
lets through (any 2xx) with 202, NOTIFY 100, and then *itself* sends an INVITE to the
Refer-To URI as written; the application can neither change that URI nor stop the INVITE.
The B2BUA must choose the target (plan names, the trunk, the leg budget) and keep the
caller's leg: so the REFER is declined here (RFC 3515 §2.4.2) and the switch carries the
transfer out itself. The transferor therefore gets no NOTIFY sipfrag progress; it stays
on its leg until the target answers (then the switch sends BYE) or is recalled.
"""


def refer_target(refer_to: str) -> tuple[str, str | None, str | None]:
    """(URI, user part, Replaces value) of a Refer-To header value (RFC 3515, RFC 3891)."""
    text = refer_to.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.index(">")]
    uri, _, query = text.partition("?")
    replaces = None
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name.lower() == "replaces" and value:
            replaces = unquote(value)
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user = rest.split("@", 1)[0] if "@" in rest else None
    return uri, (user.split(";", 1)[0] if user else None), replaces


def read_stats(call: Any, index: int | None = None) -> MediaStats | None:
    """RTCP figures of the call's audio stream ``index`` (default: the first live one)."""
    try:
        if index is None:
            info = call.getInfo()
            index = next(
                (
                    m.index
                    for m in info.media
                    if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status in _AUDIO_LIVE
                ),
                None,
            )
        if index is None:
            return None
        stat = call.getStreamStat(index)
        stream = call.getStreamInfo(index)
        rtcp = stat.rtcp
        rx, tx = rtcp.rxStat, rtcp.txStat
        jitter = rx.jitterUsec.mean / 1000.0 if rx.jitterUsec.n else None
        rtt = rtcp.rttUsec.mean / 1000.0 if rtcp.rttUsec.n else None
        return MediaStats(
            codec=str(stream.codecName) or None,
            rx_packets=int(rx.pkt),
            tx_packets=int(tx.pkt),
            rx_loss=int(rx.loss),
            jitter_ms=jitter,
            rtt_ms=rtt,
        )
    except Exception as exc:  # stats are a nicety; never let them break a call
        log.debug("stream stats unavailable: %s", exc)
        return None


class Leg(pj.Call):  # type: ignore[misc]  # pjsua2 has no type information
    """One SIP dialog: the caller's (inbound) or a target's (outbound)."""

    def __init__(
        self,
        account: Any,
        pj_call_id: int,
        handle: int,
        *,
        inbound: bool,
        emit: Callable[[LegEvent], None],
        media_changed: Callable[[int], None],
    ) -> None:
        super().__init__(account, pj_call_id)
        self.handle = handle
        self.inbound = inbound
        self.connected = False
        self.ended = False
        self.answered_by_us = False  # inbound: we sent 2xx
        self.started = inbound  # pjsua holds a call slot for it (outbound: makeCall passed)
        self.stats: MediaStats | None = None
        self._emit = emit
        self._media_changed = media_changed
        self._last_progress = 0
        # Media bypass (switch/call/mediapath.py): the far side's SDP as received, and
        # while bypassed the address and formats our own SDP names instead of pjsua's.
        self.remote_sdp: str | None = None
        self.local_sdp: str | None = None  # pjsua's last own SDP, before any rewrite
        self.early_sdp = False  # inbound: a 183 carried pjsua's SDP answer already
        self.rewrite: tuple[MediaAddress, tuple[str, ...]] | None = None
        self.reinvite_state = ""  # "" | "due" (after CONFIRMED) | "sent" | "done"
        self.bypassed_with: int | None = None  # the leg whose media address we name
        self.restore_due = False  # the bypass ends: re-INVITE with pjsua's own SDP
        self.confirmed = False

    def onCallState(self, prm: Any) -> None:
        at = time.monotonic_ns()
        try:
            info = self.getInfo()
            state = info.state
            if not self.inbound and state in (
                pj.PJSIP_INV_STATE_EARLY,
                pj.PJSIP_INV_STATE_CONNECTING,
            ):
                body = _rx_sdp(prm)
                if body is not None:
                    self.remote_sdp = body
            if state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.confirmed = True
            if state == pj.PJSIP_INV_STATE_EARLY and not self.inbound:
                status = int(info.lastStatusCode)
                early = _rx_sdp(prm) is not None
                # pjsua reports every 18x; relay each distinct one only once.
                if status != self._last_progress or early:
                    self._last_progress = status
                    self._emit(LegProgress(self.handle, status, early, at))
            elif state in (pj.PJSIP_INV_STATE_CONNECTING, pj.PJSIP_INV_STATE_CONFIRMED):
                if not self.connected and (
                    state == pj.PJSIP_INV_STATE_CONFIRMED or not self.inbound
                ):
                    self.connected = True
                    whole = None if self.inbound else _rx_message(prm)
                    tag = header_tag(whole, "to") if whole else None
                    self._emit(LegConnected(self.handle, at, str(info.callIdString), tag))
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.ended:
                self.ended = True
                self._emit(
                    LegEnded(
                        self.handle,
                        int(info.lastStatusCode),
                        str(info.lastReason),
                        self.connected,
                        at,
                        self.stats,
                    )
                )
        except Exception:
            log.exception("leg %d: call state callback failed", self.handle)

    def onCallSdpCreated(self, prm: Any) -> None:
        # pjsua negotiates and sends the SDP as left here (pjsua2 OnCallSdpCreatedParam).
        try:
            self.local_sdp = str(prm.sdp.wholeSdp)
            if self.rewrite is not None:
                peer, formats = self.rewrite
                prm.sdp.wholeSdp = bypass_sdp(str(prm.sdp.wholeSdp), peer, formats)
        except Exception:
            log.exception("leg %d: SDP rewrite failed", self.handle)

    def onStreamPreCreate(self, prm: Any) -> None:
        # Bypassed: pjsua's own stream must send nothing (no RTP, no RTCP), or a relay
        # that latches onto the first sender (rtpengine, NATed phones) would lock onto
        # pjsua's port instead of the far side's. It only listens, to a side that no
        # longer sends to it.
        try:
            if self.rewrite is not None:
                info = prm.streamInfo
                info.dir = pj.PJMEDIA_DIR_DECODING
                info.remoteRtcpAddress = DISCARD
        except Exception:
            log.exception("leg %d: stream pre-create callback failed", self.handle)

    def onCallMediaState(self, prm: Any) -> None:
        try:
            if self.reinvite_state == "sent":
                self.reinvite_state = "done"
            self._media_changed(self.handle)
        except Exception:
            log.exception("leg %d: media state callback failed", self.handle)

    def onStreamDestroyed(self, prm: Any) -> None:
        # The last moment the stream's RTCP figures exist: at DISCONNECTED they are gone.
        try:
            stats = read_stats(self, int(prm.streamIdx))
            if stats is not None:
                self.stats = stats
        except Exception:
            log.exception("leg %d: stream destroyed callback failed", self.handle)

    def onDtmfDigit(self, prm: Any) -> None:
        at = time.monotonic_ns()
        try:
            self._emit(LegDigit(self.handle, str(prm.digit), at))
        except Exception:
            log.exception("leg %d: DTMF callback failed", self.handle)

    def onCallTransferRequest(self, prm: Any) -> None:  # REFER (RFC 3515)
        at = time.monotonic_ns()
        prm.statusCode = REFER_TAKEN_OVER  # see REFER_TAKEN_OVER: pjsua must not dial
        try:
            uri, user, replaces = refer_target(str(prm.dstUri))
            self._emit(LegTransferRequested(self.handle, uri, user, replaces, at))
        except Exception:
            log.exception("leg %d: transfer request callback failed", self.handle)

    def onCallReplaceRequest(self, prm: Any) -> None:  # INVITE with Replaces (RFC 3891)
        # A phone that performs an attended transfer itself sends the target an INVITE
        # with Replaces; the switch does not take over its dialogs that way (yet).
        prm.statusCode = 403
        prm.reason = "Replaces not supported: transfer by REFER"

    def release(self) -> None:
        """Disown the C++ object: Python may drop it without running ``Call::~Call``.

        pjsua reuses a call id as soon as the call is gone, and ``Call::~Call`` hangs
        up whatever call now holds the id it remembers: collecting an ended Leg after
        its id went to a new call CANCELled that new call (seen under load). The
        endpoint hands ownership back when the slot is still free
        (``SipEndpoint._collect_ended``); otherwise the C++ object is leaked.
        """
        self.thisown = False

    def audio(self) -> Any | None:
        """The leg's audio port in the conference bridge, when its media is up."""
        try:
            info = self.getInfo()
            for media in info.media:
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status in _AUDIO_LIVE:
                    return self.getAudioMedia(media.index)
        except Exception as exc:
            log.debug("leg %d: no audio: %s", self.handle, exc)
        return None


def read_invite(leg: Leg, prm: Any, at: int) -> IncomingInvite:
    """The leg event of an INVITE pjsua2 hands to ``Account.onIncomingCall`` (``prm``);
    keeps the offer's SDP on ``leg``."""
    info = leg.getInfo()
    whole = str(prm.rdata.wholeMsg)
    leg.remote_sdp = sdp_body(whole)
    ruri = request_uri(whole) or str(info.localUri)
    # The From as sent: pjsua's remoteUri is re-printed and may lose the port.
    from_values = header_values(whole, "from")
    sender = parse_name_addr(from_values[0] if from_values else str(info.remoteUri))
    pai_values = header_values(whole, "p-asserted-identity")
    asserted = parse_name_addr(pai_values[0].split(",")[0]).uri if pai_values else None
    refuse = header_values(whole, "x-rufweiche-refuse")
    return IncomingInvite(
        handle=leg.handle,
        call_id=str(info.callIdString),
        request_uri=ruri,
        called_user=uri_user(ruri),
        from_uri=sender.uri,
        from_user=sender.user,
        from_display=sender.display,
        asserted=asserted,
        source=str(prm.rdata.srcAddress),
        at=at,
        refuse=refuse[0].strip() if refuse else None,
        from_tag=header_tag(whole, "from"),
    )
