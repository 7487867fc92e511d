"""Commands out of the sans-I/O call flow (:mod:`switch.call.callflow`), and its :class:`Outcome`.

``CallFlow.handle(event)`` returns these, in order; the I/O layer (switch/worker/commands.py
over switch/pjsua/) carries them out. Timers are commands too (:class:`StartTimer`,
:class:`CancelTimer`). The events that go in are in :mod:`switch.call.events`, which also
re-exports every name here (the flow and its tests import both from there). Legs are named
as in the events: ``0`` (``switch.call.events.CALLER``) is the caller's, outbound legs 1, 2, …
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rules.decision import Target

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


__all__ = [
    "AnswerAndBridge",
    "AnswerCaller",
    "Bridge",
    "Cancel",
    "CancelTimer",
    "Command",
    "Dial",
    "Finished",
    "HangUpCaller",
    "JoinQueue",
    "OpenEarlyMedia",
    "Outcome",
    "PlayMusic",
    "PlayPrompt",
    "PlayRingback",
    "QueueAnswered",
    "QueueOfferFailed",
    "RecordCaller",
    "RejectCaller",
    "RelayRinging",
    "RequestCallback",
    "StartTimer",
    "StopPlayback",
    "StopRecording",
    "Transferred",
    "Unbridge",
]
