"""The states of a call, of its legs and of its media, with their transition tables.

:class:`~switch.call.callflow.CallFlow` checks every change of its call state against
:data:`CALL_TRANSITIONS` and of its media phase against :data:`MEDIA_TRANSITIONS` at run
time (as h11 does); a leg moves only along :data:`LEG_TRANSITIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from switch.call.events import (
    CallerDigit,
    CallerGone,
    ConfirmDigit,
    Event,
    LegAnswered,
    LegFailed,
    LegHandedOver,
    LegHungUp,
    PlaybackDone,
    QueueGaveUp,
    QueueOffered,
    QueueStatus,
    Shutdown,
    TimerFired,
    TransferRequested,
)


class CallState(StrEnum):
    IDLE = "idle"  # built, start() not called yet
    DIALLING = "dialling"  # ringing targets; the caller is not answered
    BRIDGED = "bridged"  # the caller is answered and bridged with one leg
    TRANSFERRING = "transferring"  # answered; a transfer target rings (switch/call/transfer.py)
    MEDIA = "media"  # the caller is answered by the switch: announcement or voicemail
    QUEUED = "queued"  # answered, waits in a queue with music; members ring (issue 19)
    FINISHED = "finished"  # Finished was emitted; nothing more happens


class LegState(StrEnum):
    DIALLING = "dialling"  # INVITE sent, no response yet
    RINGING = "ringing"  # 180/183 seen
    CONFIRMING = "confirming"  # answered; hears a prompt, must press 1 (or hear a whisper)
    BRIDGED = "bridged"  # answered and bridged with the caller
    FAILED = "failed"  # final error response, transport error, or could not be sent
    CANCELLED = "cancelled"  # we ended it: CANCEL before its answer, BYE after
    HUNG_UP = "hung_up"  # the callee ended it after the bridge


UNANSWERED: Final = frozenset({LegState.DIALLING, LegState.RINGING})
"""Leg states in which the leg still might answer and we still want it to."""

START = "start"
"""The pseudo-event of :meth:`CallFlow.start` in :data:`CALL_TRANSITIONS`."""

_NEXT_STEP: Final = frozenset(
    {CallState.DIALLING, CallState.QUEUED, CallState.MEDIA, CallState.FINISHED}
)
"""Where a call goes at its start, when a step ends unanswered and when its queue gives up:
the rule's (next) step, which dials or queues, its final action (media), or the end."""

_TRANSFER_GOES_ON: Final = frozenset(
    {CallState.TRANSFERRING, CallState.BRIDGED, CallState.MEDIA, CallState.FINISHED}
)
"""Where a transfer goes when its target's leg fails, hangs up or rings too long: the next
target, the recall (bridged again), the plan's voicemail, or the end."""

# Like h11's EVENT_TRIGGERED_TRANSITIONS: from each state, the events that can move the
# call, and the states each can lead to (the handler picks one by the event's details).
CALL_TRANSITIONS: Final[Mapping[CallState, Mapping[type[Event] | str, frozenset[CallState]]]] = {
    CallState.IDLE: {START: _NEXT_STEP},
    CallState.DIALLING: {
        LegAnswered: frozenset({CallState.BRIDGED}),
        LegFailed: _NEXT_STEP,
        LegHungUp: _NEXT_STEP,
        TimerFired: _NEXT_STEP | {CallState.BRIDGED},
        ConfirmDigit: frozenset({CallState.BRIDGED}),
        # a whisper was heard (BRIDGED), or the welcome prompt and the steps begin
        PlaybackDone: _NEXT_STEP | {CallState.BRIDGED},
        CallerGone: frozenset({CallState.FINISHED}),
        Shutdown: frozenset({CallState.FINISHED}),
    },
    CallState.BRIDGED: {
        TransferRequested: frozenset({CallState.TRANSFERRING}),
        LegHandedOver: frozenset({CallState.FINISHED}),  # attended transfer: the donor call
        LegHungUp: frozenset({CallState.FINISHED}),
        LegFailed: frozenset({CallState.FINISHED}),  # the bridged leg died with an error
        CallerGone: frozenset({CallState.FINISHED}),
        Shutdown: frozenset({CallState.FINISHED}),
    },
    # A transfer ends bridged (target answered, or the recall), in MEDIA (the plan's
    # voicemail when nobody is left), or finished.
    CallState.TRANSFERRING: {
        LegAnswered: frozenset({CallState.BRIDGED}),
        LegFailed: _TRANSFER_GOES_ON,
        LegHungUp: _TRANSFER_GOES_ON,
        TimerFired: _TRANSFER_GOES_ON,
        CallerGone: frozenset({CallState.FINISHED}),
        Shutdown: frozenset({CallState.FINISHED}),
    },
    CallState.MEDIA: {
        PlaybackDone: frozenset({CallState.MEDIA, CallState.FINISHED}),
        TimerFired: frozenset({CallState.MEDIA, CallState.FINISHED}),
        CallerGone: frozenset({CallState.FINISHED}),
        Shutdown: frozenset({CallState.FINISHED}),
    },
    # Issue 19: waiting in a queue. Giving up (max wait, full) moves on like a failed step.
    CallState.QUEUED: {
        QueueOffered: frozenset({CallState.QUEUED}),
        QueueStatus: frozenset({CallState.QUEUED}),
        LegAnswered: frozenset({CallState.BRIDGED}),
        PlaybackDone: frozenset({CallState.BRIDGED}),  # the member heard the whisper
        QueueGaveUp: _NEXT_STEP,
        TimerFired: _NEXT_STEP,
        CallerDigit: frozenset({CallState.MEDIA, CallState.FINISHED}),
        CallerGone: frozenset({CallState.FINISHED}),
        Shutdown: frozenset({CallState.FINISHED}),
    },
    CallState.FINISHED: {},
}


class LegInput(StrEnum):
    RINGING = "ringing"
    PROMPT = "prompt"  # the leg answered; it must confirm (or hear the whisper) first
    ANSWER = "answer"  # the leg answered and won
    FAIL = "fail"
    CANCEL = "cancel"
    HANG_UP = "hang_up"


LEG_TRANSITIONS: Final[Mapping[LegState, Mapping[LegInput, LegState]]] = {
    LegState.DIALLING: {
        LegInput.RINGING: LegState.RINGING,
        LegInput.PROMPT: LegState.CONFIRMING,
        LegInput.ANSWER: LegState.BRIDGED,
        LegInput.FAIL: LegState.FAILED,
        LegInput.CANCEL: LegState.CANCELLED,
    },
    LegState.RINGING: {
        LegInput.RINGING: LegState.RINGING,
        LegInput.PROMPT: LegState.CONFIRMING,
        LegInput.ANSWER: LegState.BRIDGED,
        LegInput.FAIL: LegState.FAILED,
        LegInput.CANCEL: LegState.CANCELLED,
    },
    LegState.CONFIRMING: {
        LegInput.ANSWER: LegState.BRIDGED,  # pressed 1, or heard the whisper
        LegInput.FAIL: LegState.HUNG_UP,
        LegInput.HANG_UP: LegState.HUNG_UP,
        LegInput.CANCEL: LegState.CANCELLED,  # BYE: timed out, or someone else won
    },
    LegState.BRIDGED: {
        LegInput.FAIL: LegState.HUNG_UP,  # an error instead of a BYE: it is gone all the same
        LegInput.HANG_UP: LegState.HUNG_UP,
        LegInput.CANCEL: LegState.CANCELLED,
    },
    LegState.FAILED: {},
    LegState.CANCELLED: {},
    LegState.HUNG_UP: {},
}


class MediaPhase(StrEnum):
    """What the media services do for the caller right now."""

    NONE = "none"  # nothing (ringing, bridged)
    WELCOME = "welcome"  # the welcome prompt as early media, before the first step
    ANNOUNCEMENT = "announcement"  # the final announcement; then the switch hangs up
    GREETING = "greeting"  # the voicemail (or dictation) greeting, with its beep
    RECORDING = "recording"  # recording the caller's message


MEDIA_TRANSITIONS: Final[Mapping[MediaPhase, frozenset[MediaPhase]]] = {
    MediaPhase.NONE: frozenset({MediaPhase.WELCOME, MediaPhase.ANNOUNCEMENT, MediaPhase.GREETING}),
    MediaPhase.WELCOME: frozenset({MediaPhase.NONE}),  # over, or cut short: the steps ring
    MediaPhase.GREETING: frozenset({MediaPhase.RECORDING}),
    MediaPhase.ANNOUNCEMENT: frozenset(),
    MediaPhase.RECORDING: frozenset(),
}


__all__ = [
    "CALL_TRANSITIONS",
    "LEG_TRANSITIONS",
    "MEDIA_TRANSITIONS",
    "START",
    "UNANSWERED",
    "CallState",
    "LegInput",
    "LegState",
    "MediaPhase",
]
