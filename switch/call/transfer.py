"""Putting a call through: the B2BUA carries out a transfer itself (pure).

Theory of operation
-------------------
The caller's leg stays; the switch dials the transfer target as a new outbound leg and
bridges the caller to it when it answers. The trunk never sees a REFER (providers mostly
refuse it). The transferor is the bridged callee (the assistant's phone, a desk phone,
the mobile); it asks by REFER (RFC 3515, switch/pjsua/calls.py) or, from a phone that
cannot send one (a mobile reached over the trunk), by a DTMF code during the call
(RFC 4733 digits): ``*2<number>#`` or ``##<number>#`` (:class:`TransferDigits`).

In the call flow (:class:`TransferFlow`, mixed into :class:`~switch.call.callflow.CallFlow`)::

    BRIDGED ──TransferRequested──▶ TRANSFERRING ──target answers──▶ BRIDGED (with the target;
       ▲                              │                               the transferor gets BYE)
       │ recall: the transferor       │ busy, error, no answer within the timer,
       └──── is still there ──────────┤ or the target was nobody we can dial
                                      ├─ transferor gone: ring its device again ("recall"),
                                      │  and when that fails too: the plan's final action
                                      └─ (voicemail with media services; else hang up)

While the target rings the caller is out of the bridge and hears a prompt
(:data:`~switch.call.prompts.TRANSFER_PROMPT`) when the media services run, else the
ringback tone (:class:`~switch.call.events.PlayRingback`); the transferor
waits on its own leg. Every transfer ends with one :class:`~switch.call.events.Transferred`
command for the record: who, to whom, the outcome (answered, recalled, fallback, failed,
attended).

Attended transfer (REFER with Replaces, RFC 3891) joins two calls of one worker: the
assistant has the caller (call A, she is its bridged callee) and has called Jan through
the switch (call B, she is its caller). The worker (switch/worker/attended.py) moves
Jan's answered leg from B to A: A gets :class:`~switch.call.events.TransferJoined`
(bridge the caller with the new leg, BYE to the assistant's leg), B gets
:class:`~switch.call.events.LegHandedOver` (BYE to the assistant, B ends). Nobody rings,
nothing is dialled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rules import DialPlan, normalize_number
from rules.decision import Failure, FinalKind, Target
from switch.call.events import (
    CALLER,
    Bridge,
    Cancel,
    CancelTimer,
    Command,
    Dial,
    HangUpCaller,
    LegAnswered,
    LegFailed,
    LegHandedOver,
    LegHungUp,
    LegRinging,
    Outcome,
    PlayPrompt,
    PlayRingback,
    StartTimer,
    StopPlayback,
    TimerFired,
    TransferJoined,
    Transferred,
    TransferRequested,
    Unbridge,
)
from switch.call.flowbase import FlowBase, LegView
from switch.call.outbound import allowed_classes, classify_number
from switch.call.prompts import ANONYMOUS
from switch.call.states import UNANSWERED, CallState, LegInput, LegState

TRANSFER_TIMER: Final = "transfer"
RECALL_TIMER: Final = "recall"
TRANSFER_TIMEOUT_S: Final = 25.0
"""How long a blind-transfer target rings before the caller is recalled."""
TRANSFER_PROMPT: Final = "Bitte bleiben Sie am Apparat, Sie werden verbunden."
DTMF_PREFIXES: Final = ("*2", "##")
_MAX_DIGITS: Final = 24


class TransferDigits:
    """Collects a bridged leg's DTMF digits into a transfer code: ``*2<number>#``."""

    def __init__(self) -> None:
        self.buffer = ""

    def push(self, digit: str) -> str | None:
        """The number once a code is complete, else None (the digits go on)."""
        text = self.buffer + digit
        prefix = next((p for p in DTMF_PREFIXES if text.startswith(p)), None)
        if prefix is None:
            self.buffer = text if any(p.startswith(text) for p in DTMF_PREFIXES) else ""
            return None
        body = text[len(prefix) :]
        if digit == "#" and body.endswith("#") and len(body) > 1:
            self.buffer = ""
            return body[:-1]
        if not body.rstrip("#").isdigit() and body:
            self.buffer = ""
            return None
        self.buffer = text if len(text) <= _MAX_DIGITS else ""
        return None


def transfer_target(text: str, plan: DialPlan | None, transferor: str | None) -> Target | None:
    """Whom ``text`` names: a plan device (``jan.mobile``), a person (``jan``), an extension
    (``201``) or a phone number the transferor may call (outbound classes). None if nobody."""
    text = text.strip()
    if plan is not None:
        person_id, _, device = text.partition(".")
        for people, is_service in ((plan.people, False), (plan.service, True)):
            person = people.get(person_id)
            if person is not None:
                name = device or person.default_device
                uri = person.devices.get(name)
                if uri is None:
                    return None
                return Target(f"{person_id}.{name}", uri, person_id, name, is_service)
            for pid, someone in people.items():
                for name, uri in someone.devices.items():
                    if uri.startswith("sip") and uri.split(":", 1)[1].split("@", 1)[0] == text:
                        return Target(f"{pid}.{name}", uri, pid, name, is_service)
    call_class, number = classify_number(text, plan.region if plan is not None else "DE")
    if call_class == "invalid":
        return None
    if call_class != "emergency" and plan is not None:
        allowed = allowed_classes(plan, transferor or "")
        if call_class not in allowed:
            return None
    if normalize_number(number) is None and call_class != "emergency" and number[:1] != "1":
        return None
    return Target(number, f"tel:{number}", "external", call_class)


class TransferFlow(FlowBase):
    """The transfer transitions of :class:`~switch.call.callflow.CallFlow` (see above)."""

    if TYPE_CHECKING:

        def _final_action(self, at: int) -> list[Command]: ...

    _xfer_from: int | None = None  # the transferor's leg
    _xfer_leg: int | None = None  # the leg ringing now: the target, or the recall
    _xfer_text: str = ""
    _xfer_timer: str | None = None
    _xfer_prompt: bool = False

    @property
    def transferring(self) -> bool:
        return self.state is CallState.TRANSFERRING

    def _on_transfer(self, event: TransferRequested) -> list[Command]:
        if self.state is not CallState.BRIDGED or event.leg != self._answered_leg:
            return []  # only the bridged callee can transfer, and once at a time
        by = self._legs[event.leg].target.ref
        if event.target is None:
            # 603: an attended transfer whose other call this worker does not hold.
            status = 603 if event.replaces else 404
            return [Transferred(by, event.text, "failed", event.at, status)]
        self._enter(CallState.TRANSFERRING)
        self._xfer_from, self._xfer_text = event.leg, event.text
        commands: list[Command] = [Unbridge(event.leg)]
        self._xfer_prompt = True
        if self.media is not None:
            commands.append(PlayPrompt(CALLER, TRANSFER_PROMPT))
        else:  # no prompts without media services: ringback, never silence
            commands.append(PlayRingback(CALLER))
        commands.extend(self._xfer_dial(event.target, TRANSFER_TIMER))
        return commands

    @property
    def next_leg(self) -> int:
        """The id the next outbound leg of this call gets (a dial or an adopted leg)."""
        return len(self._legs) + 1

    def _on_joined(self, event: TransferJoined) -> list[Command]:
        """Attended transfer: the caller is bridged with a leg that answered in another call."""
        from switch.call.callflow import LegView  # the flow's own leg record

        if (
            self.state is not CallState.BRIDGED
            or event.leg != self._answered_leg
            or event.new_leg in self._legs
        ):
            return []
        old = self._legs[event.leg]
        self._legs[event.new_leg] = LegView(
            event.new_leg, event.target, old.step, LegState.BRIDGED, answered_at=event.at
        )
        self._move(old, LegInput.CANCEL, ended_at=event.at)
        self._answered_leg = event.new_leg
        return [
            Bridge(event.new_leg),
            Cancel(event.leg),  # BYE to the transferor's leg of this call
            Transferred(old.target.ref, event.text, "attended", event.at, 200),
        ]

    def _on_handed_over(self, event: LegHandedOver) -> list[Command]:
        """Attended transfer: the bridged leg lives on in another call; this one ends."""
        if self.state is not CallState.BRIDGED or event.leg != self._answered_leg:
            return []
        self._move(self._legs[event.leg], LegInput.HANG_UP, ended_at=event.at)
        return [HangUpCaller(), self._finish(Outcome.ANSWERED, "transfer", 200, event.at)]

    def _xfer_dial(self, target: Target, timer: str) -> list[Command]:
        leg = len(self._legs) + 1
        step = self._legs[self._xfer_from].step if self._xfer_from in self._legs else 0
        self._legs[leg] = LegView(leg, target, step, LegState.DIALLING)
        self._xfer_leg, self._xfer_timer = leg, timer
        display = f"{self.decision.announce_as}: {self.call.caller or ANONYMOUS}"
        return [
            Dial(leg, target, display, self.call.caller, self.call.called),
            StartTimer(timer, TRANSFER_TIMEOUT_S),
        ]

    def _xfer_event(self, event: object) -> list[Command] | None:
        """Handle an event while TRANSFERRING; None when the flow's own handler should."""
        leg = getattr(event, "leg", None)
        match event:
            case LegRinging() if leg == self._xfer_leg:
                view = self._legs[event.leg]
                if view.state in UNANSWERED:
                    self._move(view, LegInput.RINGING, ringing_at=event.at)
                return []
            case LegAnswered() if leg == self._xfer_leg:
                return self._xfer_answered(event.leg, event.at)
            case LegFailed() if leg == self._xfer_leg:
                view = self._legs[event.leg]
                self._move(view, LegInput.FAIL, ended_at=event.at, status=event.status)
                return self._xfer_failed(event.at, event.status)
            case TimerFired() if event.timer == self._xfer_timer:
                view = self._legs[self._xfer_leg or 0]
                self._move(view, LegInput.CANCEL, ended_at=event.at, failure=Failure.NO_ANSWER)
                return [Cancel(view.leg), *self._xfer_failed(event.at, 408, timer_fired=True)]
            case LegHungUp() | LegFailed() if leg == self._xfer_from:
                view = self._legs[event.leg]
                if view.state is LegState.BRIDGED:
                    self._move(view, LegInput.HANG_UP, ended_at=event.at)
                return []  # a blind transfer: the transferor leaves at once
            case LegAnswered() | LegRinging() | LegFailed() | LegHungUp() | TimerFired():
                return []
        return None

    def _xfer_answered(self, leg: int, at: int) -> list[Command]:
        view = self._legs[leg]
        if view.state not in UNANSWERED:
            return []
        self._move(view, LegInput.ANSWER, answered_at=at)
        commands = self._xfer_end_waiting()
        commands.append(Bridge(leg))
        recall = self._xfer_timer == RECALL_TIMER
        old = self._xfer_from
        if old is not None and self._legs[old].state is LegState.BRIDGED:
            self._move(self._legs[old], LegInput.CANCEL, ended_at=at)
            commands.append(Cancel(old))
        self._answered_leg = leg
        by = self._legs[old].target.ref if old is not None else "?"
        outcome = "recalled" if recall else "answered"
        commands.append(Transferred(by, self._xfer_text, outcome, at, 200))
        self._xfer_reset()
        self._enter(CallState.BRIDGED)
        return commands

    def _xfer_failed(self, at: int, status: int, *, timer_fired: bool = False) -> list[Command]:
        commands: list[Command] = []
        if not timer_fired and self._xfer_timer is not None:
            commands.append(CancelTimer(self._xfer_timer))
        old = self._xfer_from
        assert old is not None
        transferor = self._legs[old]
        by = transferor.target.ref
        if self._xfer_timer == TRANSFER_TIMER and transferor.state is LegState.BRIDGED:
            # Recall: the transferor is still on its leg; the caller goes back to it.
            commands.extend(self._xfer_end_waiting())
            commands.append(Bridge(old))
            commands.append(Transferred(by, self._xfer_text, "recalled", at, status))
            self._answered_leg = old
            self._xfer_reset()
            self._enter(CallState.BRIDGED)
            return commands
        if self._xfer_timer == TRANSFER_TIMER:
            # The transferor hung up after its REFER: ring its device again.
            commands.extend(self._xfer_dial(transferor.target, RECALL_TIMER))
            return commands
        commands.extend(self._xfer_end_waiting())
        self._xfer_reset()
        if self.media is not None and self.decision.final.kind is not FinalKind.REJECT:
            commands.append(Transferred(by, self._xfer_text, "fallback", at, status))
            self._answered_leg = None
            commands.extend(self._final_action(at))
            return commands
        commands.append(Transferred(by, self._xfer_text, "failed", at, status))
        commands.append(HangUpCaller())
        commands.append(self._finish(Outcome.ANSWERED, "switch", 200, at))
        return commands

    def _xfer_end_waiting(self) -> list[Command]:
        if self._xfer_prompt:
            self._xfer_prompt = False
            return [StopPlayback(CALLER)]
        return []

    def _xfer_reset(self) -> None:
        self._xfer_from = self._xfer_leg = self._xfer_timer = None
        self._xfer_text = ""

    def _xfer_abort(self, at: int) -> list[Command]:
        """The caller left or the worker stops during a transfer: end every live leg."""
        commands = self._xfer_end_waiting()
        if self._xfer_timer is not None:
            commands.append(CancelTimer(self._xfer_timer))
        for leg in (self._xfer_leg, self._xfer_from):
            view = self._legs.get(leg or 0)
            if view is not None and (view.state in UNANSWERED or view.state is LegState.BRIDGED):
                self._move(view, LegInput.CANCEL, ended_at=at)
                commands.append(Cancel(view.leg))
        self._xfer_reset()
        return commands


__all__ = [
    "DTMF_PREFIXES",
    "RECALL_TIMER",
    "TRANSFER_PROMPT",
    "TRANSFER_TIMEOUT_S",
    "TRANSFER_TIMER",
    "TransferDigits",
    "TransferFlow",
    "transfer_target",
]
