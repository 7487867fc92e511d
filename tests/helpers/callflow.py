"""Builders for the pure call-flow tests (tests/switch/call/): targets, plans, random events.

:func:`call` is the incoming call, :func:`plan` a :class:`rules.decision.Decision` of given
steps; :data:`decisions` and :func:`draw_event` are the Hypothesis strategies of the random
event sequences (the media tests draw from them too).
"""

from __future__ import annotations

from typing import Protocol

from hypothesis import strategies as st

from rules.decision import Decision, Failure, Final, FinalKind, OnFailure, Step, Target
from switch.call.events import (
    CallerGone,
    ConfirmDigit,
    Event,
    IncomingCall,
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegRinging,
    Shutdown,
    TimerFired,
)


class Dialled(Protocol):
    """What :func:`draw_event` needs to know of a flow: its legs and the timers it started."""

    @property
    def dialled(self) -> list[int]: ...

    @property
    def started_timers(self) -> set[str]: ...


DESK = Target("jan.desk", "sip:201@office", "jan", "desk")
MOBILE = Target("jan.mobile", "tel:+491701234567", "jan", "mobile")
HOME = Target("heimbuero.assistant", "sip:300@heimbuero", "heimbuero", "assistant", True)
ANNA = Target("anna.desk", "sip:202@office", "anna", "desk")
CALLER_NUMBER = "+4917112345678"
CALLED = "+4930123456"
REJECT = Final(FinalKind.REJECT, 480, "Temporarily Unavailable")
T0 = 1_000_000


def call(caller: str | None = CALLER_NUMBER) -> IncomingCall:
    return IncomingCall("call-1@test", CALLED, caller, None, T0)


def plan(*steps: Step, final: Final = REJECT) -> Decision:
    return Decision("mueller", "weekday", steps, final, "Tischlerei Müller")


TARGETS = (DESK, MOBILE, HOME, ANNA)
steps_strategy = st.builds(
    Step,
    targets=st.lists(st.sampled_from(TARGETS), max_size=3).map(tuple),
    timeout=st.sampled_from([5.0, 15.0, 20.0]),
    parallel=st.booleans(),
    confirm=st.booleans(),
    on_busy=st.sampled_from(OnFailure),
    on_no_answer=st.sampled_from(OnFailure),
    on_unreachable=st.sampled_from(OnFailure),
)
finals = st.builds(
    Final,
    kind=st.sampled_from(FinalKind),
    sip_status=st.sampled_from([403, 480, 486, 603]),
    reason=st.sampled_from(["Temporarily Unavailable", "Busy Here"]),
)
decisions = st.builds(
    Decision,
    tenant=st.just("mueller"),
    rule=st.just("r"),
    steps=st.lists(steps_strategy, max_size=3).map(tuple),
    final=finals,
    announce_as=st.just("Tischlerei Müller"),
)
EVENT_KINDS = ("ringing", "answered", "failed", "hung_up", "caller", "timer", "digit", "shutdown")


def draw_event(data: st.DataObject, oracle: Dialled, at: int) -> Event:
    """A random event that fits what ``oracle`` saw dialled and timed (often out of order)."""
    kind = data.draw(st.sampled_from(EVENT_KINDS))
    legs = oracle.dialled
    if not legs and kind in ("ringing", "answered", "failed", "hung_up", "digit"):
        kind = "caller"
    leg = data.draw(st.sampled_from(legs)) if legs else 0
    if kind == "ringing":
        return LegRinging(leg, data.draw(st.sampled_from([180, 183])), data.draw(st.booleans()), at)
    if kind == "answered":
        return LegAnswered(leg, at)
    if kind == "failed":
        failure = data.draw(st.sampled_from(Failure))
        return LegFailed(leg, 486, "Busy Here", failure, at)
    if kind == "hung_up":
        return LegHungUp(leg, at)
    if kind == "digit":
        return ConfirmDigit(leg, "1", at)
    if kind == "timer":
        timers = [*sorted(oracle.started_timers), "step-9"]
        return TimerFired(data.draw(st.sampled_from(timers)), at)
    if kind == "shutdown":
        return Shutdown(at)
    return CallerGone(data.draw(st.booleans()), at)
