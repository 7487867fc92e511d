"""What :func:`rules.decide` returns: the routing plan for one call.

These types are the contract between rules/ (which builds them) and switch/ (whose
call flow carries them out). They are frozen dataclasses rather than pydantic models
because they are built on the SIP hot path, once per call, and must be cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Failure(StrEnum):
    """Why a step did not connect the call (RFC 3261 §21 status classes, grouped)."""

    BUSY = "busy"  # 486, 600
    NO_ANSWER = "no_answer"  # step timeout, 408, 480
    UNREACHABLE = "unreachable"  # transport error, 404, 5xx, any other failure
    DECLINED = "declined"  # 603 from the target


class OnFailure(StrEnum):
    NEXT = "next"  # go on with the next step (the default)
    FINAL = "final"  # skip the remaining steps, carry out the final action


@dataclass(frozen=True, slots=True)
class Target:
    """One device to ring."""

    ref: str  # as written in the plan: "jan.desk", "heimbuero.assistant"
    uri: str  # "sip:201@office", "tel:+491701234567"
    owner: str  # person or service id: "jan", "heimbuero"
    device: str  # "desk"
    is_service: bool = False  # True when the owner is the secretarial service


@dataclass(frozen=True, slots=True)
class Step:
    """Ring these targets; in parallel, the first answer wins and the others are cancelled."""

    targets: tuple[Target, ...]
    timeout: float  # seconds
    parallel: bool = False
    confirm: bool = False  # answer confirmation (press 1) on the answering leg
    on_busy: OnFailure = OnFailure.NEXT
    on_no_answer: OnFailure = OnFailure.NEXT
    on_unreachable: OnFailure = OnFailure.NEXT
    # Issue 19: this step waits in the named queue instead of ringing ``targets`` (empty).
    queue: str | None = None

    def on(self, failure: Failure) -> OnFailure:
        if failure is Failure.BUSY:
            return self.on_busy
        if failure is Failure.NO_ANSWER:
            return self.on_no_answer
        return self.on_unreachable


class FinalKind(StrEnum):
    REJECT = "reject"
    VOICEMAIL = "voicemail"
    ANNOUNCEMENT = "announcement"


@dataclass(frozen=True, slots=True)
class Final:
    """What happens when no step connected the call (or at once, when there are no steps)."""

    kind: FinalKind
    sip_status: int = 480  # for REJECT, and for VOICEMAIL/ANNOUNCEMENT until media services exist
    reason: str = "Temporarily Unavailable"
    announcement: str | None = None  # text or file name, for ANNOUNCEMENT


@dataclass(frozen=True, slots=True)
class Decision:
    tenant: str
    rule: str | None  # name of the matched rule; None when no rule matched
    steps: tuple[Step, ...]
    final: Final
    announce_as: str  # business name shown to the callee ("Tischlerei Müller")
    # Every rule tried, and why. ``decide`` returns a :class:`rules.trace.Trace`, a sequence
    # whose lines are written when first read (the hot path never pays for them).
    trace: Sequence[str] = field(default=(), compare=False)
