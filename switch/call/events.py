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

This module holds the events (and :class:`IncomingCall`); the commands and :class:`Outcome`
are in :mod:`switch.call.commands` and re-exported here, so ``events.Dial`` still works.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.decision import Decision, Failure, Target
from switch.call import commands
from switch.call.commands import *  # noqa: F403  (re-exported: the flow imports both from here)

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
    ``local``: the worker itself could not place the leg (no free call slot), so nothing
    reached the target; when every leg of the call failed so, the caller gets 503 and the
    edge tries another worker instead of the plan going on as if the target had failed.
    """

    leg: int
    status: int
    reason: str
    failure: Failure
    at: int
    local: bool = False


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
    "CallerDigit",
    "CallerGone",
    "ConfirmDigit",
    "Decision",
    "Event",
    "IncomingCall",
    "LegAnswered",
    "LegFailed",
    "LegHandedOver",
    "LegHungUp",
    "LegRinging",
    "PlaybackDone",
    "QueueGaveUp",
    "QueueOffered",
    "QueueStatus",
    "Shutdown",
    "TimerFired",
    "TransferJoined",
    "TransferRequested",
]
__all__ += commands.__all__
