"""The state of one call flow and the only writers of it (pure).

:class:`FlowBase` holds what :class:`~switch.call.callflow.CallFlow` knows about a call:
the call state, the media phase, every outbound leg (:class:`LegView`), the ringing round.
Its primitives are the only code that changes them, each along its table in
switch/call/states.py: :meth:`FlowBase._enter` (the call), :meth:`FlowBase._enter_media`
(the media phase), :meth:`FlowBase._move` (a leg), :meth:`FlowBase._finish` (the end).
The three parts of the flow build on it: the dialling in switch/call/callflow.py, the
media services in switch/call/mediaflow.py, the transfers in switch/call/transfer.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from rules.decision import Decision, Failure, Target
from switch.call.events import (
    CALLER,
    Cancel,
    Command,
    Event,
    Finished,
    HangUpCaller,
    IncomingCall,
    Outcome,
)
from switch.call.prompts import MediaOptions
from switch.call.states import (
    CALL_TRANSITIONS,
    LEG_TRANSITIONS,
    MEDIA_TRANSITIONS,
    START,
    UNANSWERED,
    CallState,
    LegInput,
    LegState,
    MediaPhase,
)
from switch.errors import CallFlowError

_NO_FINAL_YET: Final = frozenset({MediaPhase.NONE, MediaPhase.WELCOME})
"""Media phases in which the plan's final action has not begun."""


@dataclass(frozen=True, slots=True)
class LegView:
    """What the flow knows about one outbound leg. Stamps are the ``at`` of events."""

    leg: int
    target: Target
    step: int  # index into Decision.steps, 0-based (as CallRecord's LegRecord.step)
    state: LegState
    ringing_at: int | None = None  # first 18x
    answered_at: int | None = None  # the 200 that won
    ended_at: int | None = None  # when it failed, we cancelled it, or the callee hung up
    status: int | None = None  # final SIP status reported by LegFailed (487 after a CANCEL)
    reason: str | None = None
    failure: Failure | None = None  # how it counted for its step (NO_ANSWER when timed out)


@dataclass(frozen=True, slots=True)
class Round:
    """The legs ringing now: a whole step, or one position of a hunt group."""

    step: int
    position: int  # hunt position, 0 for a one-round step
    timer: str
    legs: tuple[int, ...]


class FlowBase:
    """The state of one call flow and its writers (see the module docstring)."""

    def __init__(
        self, call: IncomingCall, decision: Decision, media: MediaOptions | None = None
    ) -> None:
        self.call = call
        self.decision = decision
        self.media = media
        self._state = CallState.IDLE
        self._legs: dict[int, LegView] = {}
        self._failed_here: set[int] = set()  # legs the worker could not place (LegFailed.local)
        self._round: Round | None = None  # set exactly while DIALLING
        self._round_timer_live = False  # the round's timer has not fired yet
        self._prompting: dict[int, bool] = {}  # CONFIRMING leg -> it must press 1
        self._media_phase = MediaPhase.NONE
        self._trigger: type[Event] | str = START  # what moves the call now (for _enter)
        self._trigger_state = CallState.IDLE  # the call state when it came
        self._media_timer: str | None = None
        self._step_failures: list[Failure] = []
        self._ringing_relayed = False
        self._answered_leg: int | None = None
        self.result: Finished | None = None
        """The Finished command, once emitted (for records)."""

    @property
    def state(self) -> CallState:
        """Where the call is (:data:`~switch.call.states.CALL_TRANSITIONS`)."""
        return self._state

    @property
    def media_phase(self) -> MediaPhase:
        return self._media_phase

    @property
    def finished(self) -> bool:
        return self.state is CallState.FINISHED

    @property
    def answered_leg(self) -> int | None:
        """The leg bridged with the caller, once one answered (kept after the end)."""
        return self._answered_leg

    @property
    def legs(self) -> Mapping[int, LegView]:
        """Every outbound leg dialled so far, by leg id (a read-only view)."""
        return MappingProxyType(self._legs)

    # ------------------------------------------------------------------ legs

    def _callee_gone(self, view: LegView, at: int) -> list[Command]:
        self._move(view, LegInput.HANG_UP, ended_at=at)
        return [HangUpCaller(), self._finish(Outcome.ANSWERED, "callee", 200, at)]

    def _cancel_unanswered(self, at: int, failure: Failure | None = None) -> list[Command]:
        """Cancel every leg still ringing; ``failure`` is how they count for the step."""
        commands: list[Command] = []
        for view in self._live_unanswered():
            self._move(view, LegInput.CANCEL, ended_at=at, failure=failure)
            commands.append(Cancel(view.leg))
            if failure is not None:
                self._step_failures.append(failure)
        return commands

    def _live_unanswered(self) -> list[LegView]:
        return [view for view in self._legs.values() if view.state in UNANSWERED]

    def _bridged(self) -> LegView:
        assert self._answered_leg is not None
        return self._legs[self._answered_leg]

    def _leg(self, leg: int) -> LegView:
        try:
            return self._legs[leg]
        except KeyError:
            what = "the caller's leg" if leg == CALLER else "not a leg this flow dialled"
            raise CallFlowError(
                f"leg {leg!r} of call {self.call.call_id!r} is {what}",
                call_id=self.call.call_id,
                leg=leg,
            ) from None

    # ------------------------------------------------------------------ the writers

    def _move(
        self,
        view: LegView,
        move: LegInput,
        *,
        ringing_at: int | None = None,
        answered_at: int | None = None,
        ended_at: int | None = None,
        status: int | None = None,
        reason: str | None = None,
        failure: Failure | None = None,
    ) -> None:
        # A KeyError here is a bug in the flow: the handlers only make listed moves.
        state = LEG_TRANSITIONS[view.state][move]
        self._legs[view.leg] = replace(
            view,
            state=state,
            ringing_at=ringing_at if ringing_at is not None else view.ringing_at,
            answered_at=answered_at if answered_at is not None else view.answered_at,
            ended_at=ended_at if ended_at is not None else view.ended_at,
            status=status if status is not None else view.status,
            reason=reason if reason is not None else view.reason,
            failure=failure if failure is not None else view.failure,
        )

    def _enter(self, state: CallState) -> None:
        """The only writer of the call state: a move the table does not list is a bug here."""
        allowed = CALL_TRANSITIONS[self._trigger_state].get(self._trigger, frozenset())
        if state not in allowed:
            trigger = self._trigger if isinstance(self._trigger, str) else self._trigger.__name__
            raise CallFlowError(
                f"call flow {self.call.call_id!r}: {trigger} cannot move the call from "
                f"{self._trigger_state.value!r} to {state.value!r}",
                call_id=self.call.call_id,
            )
        self._state = state

    def _enter_media(self, phase: MediaPhase) -> None:
        """The only writer of the media phase, along :data:`MEDIA_TRANSITIONS`."""
        if phase is self._media_phase:
            return
        if phase not in MEDIA_TRANSITIONS[self._media_phase]:
            raise CallFlowError(
                f"call flow {self.call.call_id!r}: media phase cannot go from "
                f"{self._media_phase.value!r} to {phase.value!r}",
                call_id=self.call.call_id,
            )
        self._media_phase = phase

    def _finish(self, outcome: Outcome, hung_up_by: str, sip_status: int, at: int) -> Finished:
        self._enter(CallState.FINISHED)
        final = None
        if self.media is not None and outcome in (Outcome.MISSED, Outcome.REJECTED):
            final = self.decision.final.kind.value
        elif self.media is not None and self._media_phase not in _NO_FINAL_YET:
            final = self.decision.final.kind.value  # aborted while the final action ran
        self.result = Finished(outcome, self._answered_leg, hung_up_by, sip_status, at, final)
        return self.result


__all__ = ["FlowBase", "LegView", "Round"]
