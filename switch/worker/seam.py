"""What the SIP endpoint (switch/pjsua/) reports about its legs, as small frozen objects.

The pjsua2 callbacks copy what they need into these and return; the worker loop reads
them after ``libHandleEvents`` and turns them into call-flow events. A leg is named by a
*handle*: an integer the endpoint never reuses (pjsua's own call ids are reused at once).
Every object carries ``at``, a ``time.monotonic_ns()`` reading taken in the callback.

:class:`SipLegs` is what the worker needs of an endpoint: switch/pjsua/endpoint.py's
``SipEndpoint`` is the real one, tests/helpers/fakesip.py a scripted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from switch.call.calllog import MediaStats
from switch.call.mediapath import Bypass


@dataclass(frozen=True, slots=True)
class IncomingInvite:
    """A new INVITE. The endpoint holds the leg; the worker must answer or reject it soon."""

    handle: int
    call_id: str
    request_uri: str
    called_user: str | None  # request-URI user part (unescaped)
    from_uri: str
    from_user: str | None
    from_display: str | None
    asserted: str | None  # P-Asserted-Identity URI when present (RFC 3325)
    source: str  # "ip:port" the INVITE came from
    at: int
    # The edge's X-Rufweiche-Refuse (issue 15): "encryption" when the calling device must
    # use TLS + SRTP and did not; the worker refuses and records why.
    refuse: str | None = None
    from_tag: str | None = None  # the caller's From tag (rtpengine's key, issue 16)


@dataclass(frozen=True, slots=True)
class LegProgress:
    """A provisional response (180/183) on an outbound leg."""

    handle: int
    status: int
    early_media: bool  # it carried SDP
    at: int


@dataclass(frozen=True, slots=True)
class LegConnected:
    """2xx to our INVITE (outbound leg) or ACK to our 2xx (inbound leg)."""

    handle: int
    at: int
    call_id: str | None = None  # the dialog's Call-ID (an attended transfer names it)
    remote_tag: str | None = None  # outbound: the callee's To tag (rtpengine's key)


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The leg is gone. ``status`` is the last status pjsua saw (final response or 200 for BYE)."""

    handle: int
    status: int
    reason: str
    connected: bool  # it had been answered before it ended
    at: int
    media: MediaStats | None = None  # RTCP figures when the leg had media


@dataclass(frozen=True, slots=True)
class LegDigit:
    handle: int
    digit: str
    at: int


@dataclass(frozen=True, slots=True)
class LegTransferRequested:
    """The leg sent a REFER (RFC 3515): put its peer through to ``refer_to``.

    ``replaces`` is the Replaces value of an attended transfer (RFC 3891), the Call-ID of
    the dialog the target should take over. The endpoint answered the REFER already.
    """

    handle: int
    refer_to: str  # the Refer-To URI as sent
    target_user: str | None  # its user part ("201", "jan.mobile", "+4917...")
    replaces: str | None
    at: int


LegEvent = IncomingInvite | LegProgress | LegConnected | LegEnded | LegDigit | LegTransferRequested


class SipLegs(Protocol):
    """The SIP side of a worker: legs by handle, events out of :meth:`poll`."""

    @property
    def legs_in_use(self) -> int: ...

    def poll(self, timeout_ms: int) -> list[LegEvent]:
        """Run the SIP stack for up to ``timeout_ms``; what happened meanwhile."""
        ...

    def dial(self, uri: str, from_header: str, headers: Sequence[tuple[str, str]]) -> int:
        """Send an INVITE; the new leg's handle, or :class:`~switch.errors.LegUnavailable`."""
        ...

    def provisional(self, handle: int, status: int = 180) -> None: ...

    def answer(self, handle: int) -> bool:
        """200 to an inbound leg; False when it is gone or the 200 could not be sent."""
        ...

    def reject(
        self, handle: int, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None: ...

    def end(self, handle: int) -> None:
        """CANCEL a ringing outbound leg, BYE an answered leg."""
        ...

    def bridge(self, a: int, b: int) -> None: ...

    def unbridge(self, handle: int) -> None: ...

    def remote_sdp(self, handle: int) -> str | None:
        """The SDP the far side of a leg sent (for the media bypass decision)."""
        ...

    def answer_bypassed(self, caller: int, callee: int, plan: Bypass) -> bool:
        """Like answer + bridge, but the RTP leaves the bridge (switch/call/mediapath.py)."""
        ...
