"""Events into and commands out of the sans-I/O call flow (:mod:`switch.call.callflow`).

Theory of operation
-------------------
One :class:`~switch.call.callflow.CallFlow` exists per incoming call. The I/O layer
(switch/pjsua/) turns pjsua2 callbacks into the *events* below, feeds them to
``CallFlow.handle(event)`` and carries out the *commands* it returns, in order.
Timers are commands too (:class:`StartTimer`/:class:`CancelTimer`); the I/O layer
feeds a :class:`TimerFired` back when one expires. Nothing here touches a socket.

Legs: the caller's leg is :data:`CALLER`; outbound legs get small integers from the
call flow (``Dial.leg``), so events about them name the same integer.

Every event carries ``at``, a ``time.monotonic_ns()`` reading taken in the callback
(CLOCK_MONOTONIC is system-wide on Linux, so readings from worker processes and the
supervisor compare). The latency figures are differences of these stamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from rules.decision import Decision, Failure, Target

CALLER = 0
"""Leg id of the incoming (caller's) leg. Outbound legs are numbered from 1."""


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class LegRinging:
    """A target sent 180/183. ``early_media`` when it came with SDP (183 or 180+SDP)."""

    leg: int
    status: int
    early_media: bool
    at: int


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """A target sent 200 OK to our INVITE (it may come without any 18x before it)."""

    leg: int
    at: int


@dataclass(frozen=True, slots=True)
class LegFailed:
    """An outbound INVITE got a final error, a transport error, or could not be sent.

    ``status`` is the SIP status (or 503 for a local failure such as no free leg,
    408 for a transport time-out); ``failure`` is its class for the dial plan.
    """

    leg: int
    status: int
    reason: str
    failure: Failure
    at: int


@dataclass(frozen=True, slots=True)
class LegHungUp:
    """An answered outbound leg ended (BYE from the target, or media/transport death)."""

    leg: int
    at: int


@dataclass(frozen=True, slots=True)
class CallerGone:
    """The caller's leg ended: CANCEL before answer, BYE after, or its transport died."""

    cancelled: bool  # True for CANCEL (before answer), False for BYE
    at: int


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer: str
    at: int


@dataclass(frozen=True, slots=True)
class ConfirmDigit:
    """A DTMF digit from an outbound leg that awaits answer confirmation."""

    leg: int
    digit: str
    at: int


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """A prompt started by :class:`PlayPrompt` on ``leg`` ended (end of file).

    ``played`` is False when nothing could be played (the prompt is not ready, the
    leg has no audio): the flow goes on as if it had been heard.
    """

    leg: int
    at: int
    played: bool = True


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """The bridged callee asks to put the caller through to ``target`` (switch/call/transfer.py).

    From a REFER (RFC 3515; ``replaces`` set for an attended transfer, RFC 3891) or a DTMF
    code. ``target`` is None when the text named nobody the switch can dial.
    """

    leg: int
    target: Target | None
    text: str
    at: int
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class TransferJoined:
    """Attended transfer (RFC 3891): the bridged callee ``leg`` (the transferor) hands the
    caller over to an answered leg of another call of this worker, now ``new_leg`` of this
    call (switch/worker/attended.py moved it). The transferor's leg ends."""

    leg: int
    new_leg: int
    target: Target
    text: str
    at: int


@dataclass(frozen=True, slots=True)
class LegHandedOver:
    """Attended transfer: this call's bridged ``leg`` went to another call (its caller is
    the transferor, who leaves): the call ends, the leg lives on elsewhere."""

    leg: int
    at: int


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The worker stops: end the call now (after its grace period ran out)."""

    at: int


# ------------------------------------------------------------- queue events (issue 19)


@dataclass(frozen=True, slots=True)
class QueueOffered:
    """The queue (in the supervisor) says: ring this member for the waiting caller."""

    member: str
    target: Target
    timeout_s: float
    at: int


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The caller's place in its queue and the expected wait (for the announcement).
    ``callback_digit``: the digit that leaves a callback request, None when off."""

    position: int
    expected_wait_s: float
    at: int
    callback_digit: str | None = None


@dataclass(frozen=True, slots=True)
class QueueGaveUp:
    """The queue will not take (or keep) the caller: ``reason`` is "max_wait", "full",
    "no_member" or "unknown"; the rule's next step or final action runs."""

    reason: str
    at: int


@dataclass(frozen=True, slots=True)
class CallerDigit:
    """A DTMF digit from the caller's leg (a waiting caller asking for a callback)."""

    digit: str
    at: int


Event = (
    LegRinging
    | LegAnswered
    | LegFailed
    | LegHungUp
    | CallerGone
    | TimerFired
    | ConfirmDigit
    | PlaybackDone
    | TransferRequested
    | TransferJoined
    | LegHandedOver
    | Shutdown
    | QueueOffered
    | QueueStatus
    | QueueGaveUp
    | CallerDigit
)


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Dial:
    """Send an INVITE to ``target`` as outbound leg ``leg``.

    ``display`` is the From display name the callee sees ("Tischlerei Müller: +49 171 …");
    ``caller`` the original caller's URI for From/P-Asserted-Identity; ``diverted_from``
    the called business number for Diversion (RFC 5806) and History-Info (RFC 7044).
    """

    leg: int
    target: Target
    display: str
    caller: str | None
    diverted_from: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """End an outbound leg: CANCEL while it rings, BYE once answered."""

    leg: int


@dataclass(frozen=True, slots=True)
class RelayRinging:
    """Send 180 (or 183 with early media from ``media_from_leg``) to the caller."""

    status: int
    media_from_leg: int | None = None


@dataclass(frozen=True, slots=True)
class AnswerAndBridge:
    """Answer the caller (200 OK) and bridge its media with outbound leg ``leg``."""

    leg: int


@dataclass(frozen=True, slots=True)
class RejectCaller:
    """Send a final error to the caller's INVITE (never from inside onIncomingCall)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class HangUpCaller:
    """BYE to the caller (after answer)."""


@dataclass(frozen=True, slots=True)
class AnswerCaller:
    """Answer the caller (200 OK) without a bridge: the switch itself talks to it."""


@dataclass(frozen=True, slots=True)
class OpenEarlyMedia:
    """Send 183 Session Progress with our SDP to the caller (RFC 3960 early media), so
    that it hears a prompt before anyone answers, and without being answered (billed)."""


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    """Play a prompt once to ``leg`` (:data:`CALLER` or an answered outbound leg).

    ``text`` is spoken (switch/worker/announcements.py) unless the tenant has a recording of
    that name; ``beep`` appends the voicemail tone. The I/O layer feeds
    :class:`PlaybackDone` at the end of the file, or at once when it cannot play.
    """

    leg: int
    text: str
    beep: bool = False
    then: tuple[str, ...] = ()  # more texts played right after, as one prompt (issue 19)


@dataclass(frozen=True, slots=True)
class PlayRingback:
    """Play the ringback tone to ``leg`` until :class:`StopPlayback` (no PlaybackDone):
    the caller waits for a transfer target and must not hear silence. The German tone:
    425 Hz, 1 s on, 4 s off (ITU-T E.180 Suppl. 2). Needs no media services."""

    leg: int


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Stop a prompt still playing to ``leg`` (no PlaybackDone follows)."""

    leg: int


@dataclass(frozen=True, slots=True)
class RecordCaller:
    """Record the caller's audio to a voicemail file, for at most ``max_seconds``.

    ``kind`` is "voicemail" or "dictation" (the dictation box): the file goes under
    ``<data_dir>/<kind>/<tenant>/`` and the report carries it.
    """

    max_seconds: float
    kind: str = "voicemail"


@dataclass(frozen=True, slots=True)
class StopRecording:
    """Close the voicemail file and report the message (caller gone or time up)."""


@dataclass(frozen=True, slots=True)
class Bridge:
    """Bridge the (already answered) caller with outbound leg ``leg``: a transfer, a recall."""

    leg: int


@dataclass(frozen=True, slots=True)
class Unbridge:
    """Take outbound leg ``leg`` out of the caller's bridge (the transferor waits)."""

    leg: int


@dataclass(frozen=True, slots=True)
class Transferred:
    """A transfer ended (for records): ``outcome`` is answered, recalled, fallback or failed."""

    by: str  # target ref of the transferor ("heimbuero.assistant")
    to: str  # what was asked for ("jan.mobile", "+4917...")
    outcome: str
    at: int
    status: int | None = None


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: str


# ----------------------------------------------------------- queue commands (issue 19)


@dataclass(frozen=True, slots=True)
class JoinQueue:
    """Put the (answered) caller into the queue ``queue``; answers come as queue events."""

    queue: str


@dataclass(frozen=True, slots=True)
class QueueAnswered:
    """The member ``member`` took the caller (the supervisor ends its wait)."""

    queue: str
    member: str


@dataclass(frozen=True, slots=True)
class QueueOfferFailed:
    """The member did not take the caller (busy, no answer, error): offer it again."""

    queue: str
    member: str


@dataclass(frozen=True, slots=True)
class RequestCallback:
    """The caller leaves the queue and asks to be called back at ``number``."""

    queue: str
    number: str


@dataclass(frozen=True, slots=True)
class PlayMusic:
    """Play the queue's music on hold to the caller once (the owner's WAV named
    ``name``, else the bundled melody); PlaybackDone follows at its end."""

    name: str = "wartemusik"


class Outcome(StrEnum):
    ANSWERED = "answered"  # bridged to a target, then ended normally
    MISSED = "missed"  # no target answered; the final action ran
    REJECTED = "rejected"  # the plan rejected the call at once
    CANCELLED = "cancelled"  # the caller hung up before anyone answered
    ABORTED = "aborted"  # the worker stopped or died
    ABANDONED = "abandoned"  # the caller hung up while waiting in a queue (issue 19)


@dataclass(frozen=True, slots=True)
class Finished:
    """The call is over; the flow accepts no more events. For records and metrics."""

    outcome: Outcome
    answered_leg: int | None
    hung_up_by: str  # "caller", "callee", "switch"
    sip_status: int  # final status sent to the caller (200 when answered)
    at: int
    final: str | None = None  # FinalKind value when the final action ran ("voicemail", ...)


Command = (
    Dial
    | Cancel
    | RelayRinging
    | AnswerAndBridge
    | RejectCaller
    | HangUpCaller
    | StartTimer
    | CancelTimer
    | AnswerCaller
    | OpenEarlyMedia
    | PlayPrompt
    | PlayRingback
    | StopPlayback
    | RecordCaller
    | StopRecording
    | Bridge
    | Unbridge
    | Transferred
    | Finished
    | JoinQueue
    | QueueAnswered
    | QueueOfferFailed
    | RequestCallback
    | PlayMusic
)


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """What the I/O layer knows of a new incoming INVITE when it creates a flow."""

    call_id: str
    called: str  # E.164 when it could be normalised, else the request-URI user
    caller: str | None  # E.164 / URI of the caller; None when anonymous or withheld
    caller_display: str | None
    at: int
    extra: dict[str, str] = field(default_factory=dict, compare=False)


__all__ = [
    "CALLER",
    "AnswerAndBridge",
    "AnswerCaller",
    "Bridge",
    "CallerDigit",
    "CallerGone",
    "Cancel",
    "CancelTimer",
    "Command",
    "ConfirmDigit",
    "Decision",
    "Dial",
    "Event",
    "Finished",
    "HangUpCaller",
    "IncomingCall",
    "JoinQueue",
    "LegAnswered",
    "LegFailed",
    "LegHandedOver",
    "LegHungUp",
    "LegRinging",
    "OpenEarlyMedia",
    "Outcome",
    "PlayMusic",
    "PlayPrompt",
    "PlaybackDone",
    "QueueAnswered",
    "QueueGaveUp",
    "QueueOfferFailed",
    "QueueOffered",
    "QueueStatus",
    "RecordCaller",
    "RejectCaller",
    "RelayRinging",
    "RequestCallback",
    "Shutdown",
    "StartTimer",
    "StopPlayback",
    "StopRecording",
    "TimerFired",
    "TransferJoined",
    "TransferRequested",
    "Transferred",
    "Unbridge",
]
