"""A scripted :class:`~switch.worker.seam.SipLegs` for driving the worker in-process.

Like httpx's MockTransport: a *script* answers each dial. ``FakeSip({"sip:desk@office":
[Ring(), Answer()]})`` rings, then answers, the leg dialled to that URI; a URI the script
does not know gets no response at all (it rings until cancelled). Replies are delivered one
per :meth:`FakeSip.poll`, in order, for every leg at once. A CANCEL of a leg whose next
reply is an Answer crosses that 200 (RFC 3261 §9.1): the 200 still comes, the leg lives on.
Everything the driver does is logged in ``FakeSip.log`` as small tuples, in order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rules import DialPlanSet, load_plan_text
from switch.call.admission import LegBudget
from switch.call.calllog import CallPhase, CallRecord, MediaStats
from switch.call.mediapath import Bypass
from switch.control import messages as control
from switch.errors import LegUnavailable
from switch.worker.config import WorkerConfig
from switch.worker.driver import CallDriver
from switch.worker.seam import (
    IncomingInvite,
    LegConnected,
    LegDigit,
    LegEnded,
    LegEvent,
    LegProgress,
    LegTransferRequested,
)


@dataclass(frozen=True, slots=True)
class Ring:
    status: int = 180
    early_media: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class Fail:
    status: int = 486
    reason: str = "Busy Here"


@dataclass(frozen=True, slots=True)
class HangUp:
    """The callee sends BYE (after its answer)."""

    media: MediaStats | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """``dial`` raises LegUnavailable with this status (pjsua refused the leg)."""

    status: int = 503


Reply = Ring | Answer | Fail | HangUp | Digit
Script = Mapping[str, Sequence[Reply] | Unavailable]

MEDIA = MediaStats("PCMU", rx_packets=500, tx_packets=500, rx_loss=5, jitter_ms=2.0, rtt_ms=30.0)
"""RTCP figures of a clean G.711 leg (what the real endpoint reads at a leg's end)."""


@dataclass(slots=True)
class FakeLeg:
    handle: int
    uri: str
    inbound: bool
    replies: list[Reply] = field(default_factory=list)
    connected: bool = False
    answered_by_us: bool = False
    ended: bool = False


class FakeSip:
    """The SIP side of a worker, scripted (see the module docstring)."""

    def __init__(self, script: Script | None = None, *, media: MediaStats | None = MEDIA) -> None:
        self.script: Script = script or {}
        self.media = media
        self.log: list[tuple[object, ...]] = []
        self.legs: dict[int, FakeLeg] = {}
        self._handles = itertools.count(1)
        self._events: list[LegEvent] = []
        self._clock = itertools.count(1_000_000, 1000)
        self.sdp: dict[int, str] = {}  # remote SDP per handle (media bypass tests)

    # ------------------------------------------------------------------ the caller side

    def invite(
        self,
        called: str,
        caller: str = "+491715550100",
        *,
        from_uri: str | None = None,
        display: str | None = None,
    ) -> int:
        """A new INVITE arrives (delivered by the next poll); returns its handle."""
        handle = next(self._handles)
        uri = from_uri or f"sip:{caller}@caller.example"
        self.legs[handle] = FakeLeg(handle, uri, inbound=True)
        self._events.append(
            IncomingInvite(
                handle=handle,
                call_id=f"call-{handle}@fake",
                request_uri=f"sip:{called}@switch",
                called_user=called,
                from_uri=uri,
                from_user=uri.split(":", 1)[1].split("@", 1)[0],
                from_display=display,
                asserted=None,
                source="127.0.0.1:5070",
                at=self._now(),
            )
        )
        return handle

    def caller_hangs_up(self, handle: int) -> None:
        leg = self.legs[handle]
        self._end(leg, 487 if not leg.answered_by_us else 200, "Caller left")

    def refer(self, handle: int, target: str, replaces: str | None = None) -> None:
        """Leg ``handle`` sends a REFER to ``target`` (a user part: "201", "jan.mobile")."""
        self.log.append(("refer", handle, target))
        uri = f"sip:{target}@switch"
        self._events.append(LegTransferRequested(handle, uri, target, replaces, self._now()))

    def digits(self, handle: int, text: str) -> None:
        """Leg ``handle`` sends DTMF digits (RFC 4733), one event each."""
        for digit in text:
            self._events.append(LegDigit(handle, digit, self._now()))

    def handle_of(self, uri: str) -> int:
        return next(h for h, leg in self.legs.items() if leg.uri == uri and not leg.inbound)

    # ------------------------------------------------------------------ SipLegs

    @property
    def legs_in_use(self) -> int:
        return sum(1 for leg in self.legs.values() if not leg.ended)

    def poll(self, timeout_ms: int) -> list[LegEvent]:
        for leg in list(self.legs.values()):
            if leg.ended or not leg.replies:
                continue
            reply = leg.replies.pop(0)
            match reply:
                case Ring(status, early):
                    self._events.append(LegProgress(leg.handle, status, early, self._now()))
                case Answer():
                    leg.connected = True
                    call_id = f"out-{leg.handle}@fake"
                    self._events.append(LegConnected(leg.handle, self._now(), call_id))
                case Fail(status, reason):
                    self._end(leg, status, reason)
                case HangUp(media):
                    self._end(leg, 200, "BYE", media=media)
                case Digit(digit):
                    self._events.append(LegDigit(leg.handle, digit, self._now()))
        events, self._events = self._events, []
        return events

    def dial(self, uri: str, from_header: str, headers: Sequence[tuple[str, str]]) -> int:
        reply = self.script.get(uri, ())
        if isinstance(reply, Unavailable):
            self.log.append(("dial-refused", uri))
            raise LegUnavailable(f"no leg for {uri!r}", sip_status=reply.status)
        handle = next(self._handles)
        self.legs[handle] = FakeLeg(handle, uri, inbound=False, replies=list(reply))
        self.log.append(("dial", uri, from_header, tuple(headers)))
        return handle

    def provisional(self, handle: int, status: int = 180) -> None:
        self.log.append(("provisional", handle, status))

    def answer(self, handle: int) -> bool:
        leg = self.legs.get(handle)
        if leg is None or leg.ended:
            return False
        leg.answered_by_us = True
        self.log.append(("answer", handle))
        return True

    def reject(
        self, handle: int, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        leg = self.legs.get(handle)
        if leg is None or leg.ended:
            return
        self.log.append(("reject", handle, status, reason, tuple(headers)))
        self._end(leg, status, reason)

    def end(self, handle: int) -> None:
        leg = self.legs.get(handle)
        if leg is None or leg.ended:
            return
        if leg.connected or leg.answered_by_us:
            self.log.append(("bye", handle))
            self._end(leg, 200, "BYE")
        else:
            self.log.append(("cancel", handle))
            if leg.replies and isinstance(leg.replies[0], Answer):
                return  # the CANCEL crosses the callee's 200: the dialog exists after all
            self._end(leg, 487, "Request Terminated")

    def bridge(self, a: int, b: int) -> None:
        self.log.append(("bridge", a, b))

    def unbridge(self, handle: int) -> None:
        self.log.append(("unbridge", handle))

    def remote_sdp(self, handle: int) -> str | None:
        return self.sdp.get(handle)

    def answer_bypassed(self, caller: int, callee: int, plan: Bypass) -> bool:
        if not self.answer(caller):
            return False
        self.log.append(("bypass", caller, callee, plan))
        return True

    # ------------------------------------------------------------------ helpers

    def did(self, what: str) -> list[tuple[object, ...]]:
        """Every logged action of one kind ("dial", "cancel", "bye", "reject", ...)."""
        return [entry for entry in self.log if entry[0] == what]

    def _end(self, leg: FakeLeg, status: int, reason: str, media: MediaStats | None = None) -> None:
        leg.ended = True
        had_media = leg.connected or leg.answered_by_us
        stats = media if media is not None else (self.media if had_media else None)
        self._events.append(LegEnded(leg.handle, status, reason, leg.connected, self._now(), stats))

    def _now(self) -> int:
        return next(self._clock)


__all__ = [
    "MEDIA",
    "Answer",
    "Digit",
    "Fail",
    "FakeSip",
    "HangUp",
    "Reply",
    "Ring",
    "Script",
    "Unavailable",
]


# ----------------------------------------------------------------------- the rig


class DriverRig:
    """A CallDriver on a FakeSip, a Wednesday 10:00, and what it sent to the supervisor."""

    def __init__(
        self,
        plan: str,
        script: Script,
        *,
        max_legs: int = 4,
        reserve: int = 0,
        trunk: str | None = None,
    ) -> None:
        self.sip = FakeSip(script)
        self.sent: list[control.FromWorker] = []
        config = WorkerConfig(name="w1", host="127.0.0.1", port=5060, dialplans=(), trunk=trunk)
        self.driver = CallDriver(
            config,
            self.sip,
            DialPlanSet([load_plan_text(plan)]),
            LegBudget(max_legs, emergency_reserve=reserve),
            self.sent.append,
            clock=lambda: datetime(2026, 11, 25, 10, tzinfo=UTC),  # a Wednesday morning
        )

    def run(self, rounds: int = 6) -> None:
        for _ in range(rounds):
            for event in self.sip.poll(0):
                self.driver.on_leg_event(event)
            self.driver.run_pending()

    def time_passes(self, seconds: float) -> None:
        self.driver.fire_timers(now=time.monotonic_ns() + int(seconds * 1e9))
        self.run()

    def records(self, phase: CallPhase) -> list[CallRecord]:
        return [
            m.record for m in self.sent if isinstance(m, control.CallReport) and m.phase == phase
        ]

    def ended(self) -> CallRecord:
        (record,) = self.records(CallPhase.ENDED)
        return record

    def of(self, kind: type) -> list[object]:
        """What the driver sent to the supervisor of one message class, in order."""
        return [m for m in self.sent if isinstance(m, kind)]


# ----------------------------------------------------------------------- the dial plan

BUSINESS = "+49301234560"
DESK = "sip:desk@10.0.0.1:5060"
MOBILE = "sip:mobile@10.0.0.2:5060"
PHONE = "sip:201@10.0.0.9:5060"


def plan_text(steps: str) -> str:
    return f"""
tenant: t
name: Tischlerei Test
numbers: ["+49 30 1234560"]
people:
  jan:
    name: Jan
    devices: {{desk: "{DESK}", mobile: "{MOBILE}", phone: "{PHONE}"}}
rules:
  - name: test rule
    then:
{steps}
"""


SEQUENTIAL = "      - {ring: [jan.desk], timeout: 5s}\n      - {ring: [jan.mobile], timeout: 5s}"
PARALLEL = "      - {ring: [jan.desk, jan.mobile], parallel: true, timeout: 5s}"
