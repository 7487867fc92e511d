"""Outbound calls from the businesses' own phones: what was dialled, may it go out, as whom.

Pure: the worker passes the dial plans, the device that dials and what it dialled; the
answer is an :class:`OutboundCall` (dial it through the trunk) or a :class:`Refused`
(403 with a Reason, RFC 3326). Nothing here reads a clock: :class:`OutboundLimits` takes
the time as an argument.

What a phone can dial (prefixes first, in any order, then the number)::

    *31#<number>             withhold the caller's number (Privacy: id, RFC 3323/3325;
                             the prefix German networks use)
    *8<business code>#<number>   call on behalf of another business (the secretarial
                             service): that business's number is shown, its usage counts
    110, 112                 emergency: always allowed, shown with the business's number

Click to call (the HTTP API, issue 17) asks the same question through
:func:`decide_click_to_call`: the device to ring first stands for the phone that dials,
the business code for ``*8<code>#``, so the answer is the one dialling would get.

Classes of a number (``outbound.allow`` of the plan, per person ``outbound.people``):
internal (another device of the same plan), local and national (German fixed network),
mobile (+49 15x/16x/17x), international (not +49), premium (+49 900, +49 137, 118xx:
blocked unless allowed). Emergency numbers need no class. A device no plan knows never
dials out (the toll-fraud guard of the edge already refuses unauthenticated INVITEs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final as TypingFinal

from rules import DialPlan, DialPlanSet, normalize_number
from rules.decision import Decision, Final, FinalKind, Step, Target
from switch.call.events import IncomingCall

EMERGENCY: TypingFinal = frozenset({"110", "112"})
PRIVACY_PREFIX: TypingFinal = "*31#"
BUSINESS_PREFIX: TypingFinal = "*8"
CLASSES: TypingFinal = ("internal", "local", "national", "mobile", "international", "premium")
_PREMIUM_E164: TypingFinal = ("+49900", "+49137", "+49118")
_MOBILE_E164: TypingFinal = ("+4915", "+4916", "+4917")
HOUR: TypingFinal = 3600.0
DAY: TypingFinal = 86400.0


@dataclass(frozen=True, slots=True)
class Dialled:
    """The request-URI user with its prefixes taken off."""

    number: str
    privacy: bool = False
    business_code: str | None = None


def parse_dialled(user: str) -> Dialled | None:
    """``*31#*812#0171…`` -> Dialled("0171…", privacy, "12"); None if not a dialled number."""
    privacy, code, rest = False, None, user.strip()
    while rest.startswith("*"):
        if rest.startswith(PRIVACY_PREFIX) and not privacy:
            privacy, rest = True, rest[len(PRIVACY_PREFIX) :]
        elif rest.startswith(BUSINESS_PREFIX) and code is None and "#" in rest:
            code, _, rest = rest[len(BUSINESS_PREFIX) :].partition("#")
            if not code.isdigit():
                return None
        else:
            return None
    digits = rest[1:] if rest.startswith("+") else rest
    if not digits.isdigit():
        return None
    return Dialled(rest, privacy, code)


def is_outbound_dial(user: str) -> bool:
    """Whether a ``*`` number is one of the outbound prefixes (not a feature code)."""
    return user.startswith((PRIVACY_PREFIX, BUSINESS_PREFIX)) and parse_dialled(user) is not None


def classify_number(number: str, region: str = "DE") -> tuple[str, str]:
    """(class, number to dial): "emergency", a class of :data:`CLASSES`, or "invalid"."""
    if number in EMERGENCY:
        return "emergency", number
    if number.startswith("118") and len(number) == 5:
        return "premium", number  # directory enquiries: short numbers, never normalised
    e164 = normalize_number(number, region)
    if e164 is None:
        return "invalid", number
    if e164.startswith(_PREMIUM_E164):
        return "premium", e164
    if e164.startswith(_MOBILE_E164):
        return "mobile", e164
    if not e164.startswith("+49"):
        return "international", e164
    return "national", e164


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """Dial ``number`` through the trunk for ``person`` of ``tenant``, showing ``presented``."""

    tenant: str
    person: str
    number: str  # E.164, an emergency number, or a device URI (internal)
    call_class: str
    presented: str  # E.164 of the business (or the person's direct extension)
    privacy: bool
    announce_as: str
    ring_timeout: float = 60.0
    target_uri: str | None = None  # internal calls: the device itself

    @property
    def emergency(self) -> bool:
        return self.call_class == "emergency"


@dataclass(frozen=True, slots=True)
class Refused:
    """Not allowed: answer ``status`` with ``reason`` (and audit it when ``limit``)."""

    status: int
    reason: str
    tenant: str | None = None
    person: str | None = None
    limit: bool = False
    call_class: str | None = None  # of the call a limit stopped


def allowed_classes(plan: DialPlan, person: str) -> tuple[str, ...]:
    spec = plan.spec.outbound
    return spec.people.get(person, spec.allow)


def presented_number(plan: DialPlan, person: str) -> str:
    """The person's direct extension when the plan lists one, else the business's number."""
    spec = plan.spec.outbound
    raw = spec.direct.get(person) or spec.present or (plan.numbers[0] if plan.numbers else "")
    return normalize_number(raw, plan.region) or raw


def _internal_device(plan: DialPlan, number: str) -> str | None:
    """A device of the plan dialled by its extension (``201`` for ``sip:201@office``)."""
    for person in (*plan.people.values(), *plan.service.values()):
        for uri in person.devices.values():
            user = uri.split(":", 1)[-1].split("@", 1)[0]
            if uri.startswith("sip") and user == number:
                return uri
    return None


def _business(plans: DialPlanSet, code: str) -> DialPlan | None:
    return next((p for p in plans if p.spec.outbound.business_code == code), None)


def _serves(plan: DialPlan, device_uris: Iterable[str]) -> bool:
    """The device belongs to the plan's secretarial service (the assistant's phone)."""
    users = {uri.split(";", 1)[0].split(":", 1)[-1].split("@", 1)[0] for uri in device_uris}
    for service in plan.service.values():
        for uri in service.devices.values():
            if uri.split(":", 1)[-1].split("@", 1)[0] in users:
                return True
    return False


def decide_outbound(
    plans: DialPlanSet,
    owner: tuple[DialPlan, str] | None,
    user: str,
    device_uris: Iterable[str] = (),
) -> OutboundCall | Refused:
    """What dialling ``user`` from a device owned by ``owner`` (plan, person) means."""
    if owner is None:
        return Refused(403, "Unknown device: no outbound calls")
    plan, person = owner
    dialled = parse_dialled(user)
    if dialled is None:
        return Refused(404, "Not a dialable number", plan.tenant, person)
    business = plan
    if dialled.business_code is not None:
        chosen = _business(plans, dialled.business_code)
        if chosen is None:
            return Refused(404, f"No business with code {dialled.business_code}", plan.tenant)
        if chosen is not plan and not _serves(chosen, device_uris):
            return Refused(403, "Not the service of that business", plan.tenant, person)
        business = chosen
    call_class, number = classify_number(dialled.number, plan.region)
    target_uri = None
    if call_class == "invalid":
        target_uri = _internal_device(plan, dialled.number)
        if target_uri is None:
            return Refused(404, "Number not valid", plan.tenant, person)
        call_class, number = "internal", target_uri
    presented = presented_number(business, person if business is plan else "")
    call = OutboundCall(
        tenant=business.tenant,
        person=person,
        number=number,
        call_class=call_class,
        presented=presented,
        privacy=dialled.privacy and call_class != "emergency",
        announce_as=business.announce_as,
        ring_timeout=business.spec.outbound.ring_timeout,
        target_uri=target_uri,
    )
    if call.emergency:
        return call  # never blocked by a plan, a permission or a limit
    if call_class not in allowed_classes(plan, person):
        what = "Premium numbers" if call_class == "premium" else f"{call_class.capitalize()} calls"
        return Refused(403, f"{what} not allowed for {person}", business.tenant, person)
    return call


@dataclass(frozen=True, slots=True)
class ClickToCall:
    """Ring ``device_uri`` (the plan device ``ring``) first; once it answered, make ``call``."""

    ring: str  # "heimbuero.anna", "jan.desk"
    device_uri: str
    call: OutboundCall


_NUMBER_NOISE: TypingFinal = str.maketrans("", "", " -/().")


def decide_click_to_call(
    plans: DialPlanSet, tenant: str, ring: str, number: str, business: str | None = None
) -> ClickToCall | Refused:
    """Whether the device ``ring`` of ``tenant``'s plan may call ``number`` (for the business
    with code ``business``): exactly :func:`decide_outbound` of that device dialling it."""
    plan = plans.plans.get(tenant)
    if plan is None:
        return Refused(404, f"No business {tenant!r}")
    person_id, _, device = ring.strip().partition(".")
    person = plan.people.get(person_id) or plan.service.get(person_id)
    if person is None:
        return Refused(404, f"No person {person_id!r}", tenant)
    name = device or person.default_device
    uri = person.devices.get(name)
    if uri is None or not uri.startswith("sip"):
        return Refused(404, f"No phone {person_id}.{name}", tenant, person_id)
    dialled = number.strip().translate(_NUMBER_NOISE)
    if business is not None:
        dialled = f"{BUSINESS_PREFIX}{business}#{dialled}"
    answer = decide_outbound(plans, (plan, person_id), dialled, (uri,))
    if isinstance(answer, Refused):
        return answer
    return ClickToCall(f"{person_id}.{name}", uri, answer)


def outbound_decision(call: OutboundCall) -> Decision:
    """The routing plan of an outbound call: one step, the trunk (or the internal device)."""
    uri = call.target_uri or f"tel:{call.number}"
    target = Target(ref=f"out:{call.call_class}", uri=uri, owner=call.person, device="out")
    return Decision(
        tenant=call.tenant,
        rule="emergency" if call.emergency else "outbound",
        steps=(Step((target,), call.ring_timeout),),
        final=Final(FinalKind.REJECT, 480, "Nobody answered"),
        announce_as=call.announce_as,
    )


def outbound_incoming(call: OutboundCall, call_id: str, at: int) -> IncomingCall:
    """What the call flow is told of an outbound call: it is for the number dialled, from the
    number presented, and shows the business it is made for."""
    return IncomingCall(
        call_id=call_id,
        called=call.number,
        caller=call.presented,
        caller_display=call.announce_as,
        at=at,
    )


@dataclass(slots=True)
class OutboundLimits:
    """Per-person limits of one worker: calls per hour, international minutes per day.

    A stolen phone password must not run up a bill: the edge authenticates the phone,
    these stop what an authenticated phone may cost. Times are seconds (any clock).
    """

    _calls: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _international: dict[tuple[str, str], deque[tuple[float, float]]] = field(default_factory=dict)

    def check(self, plan: DialPlan, call: OutboundCall, now: float) -> Refused | None:
        """None when the call may go out (it is counted then), else why not."""
        if call.emergency:
            return None
        spec = plan.spec.outbound
        key = (call.tenant, call.person)
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - HOUR:
            calls.popleft()
        if len(calls) >= spec.calls_per_hour:
            return Refused(
                403,
                f"Limit reached: {spec.calls_per_hour} calls per hour",
                *key,
                limit=True,
                call_class=call.call_class,
            )
        if call.call_class == "international":
            used = self.international_minutes(key, now)
            if used >= spec.international_minutes_per_day:
                limit = spec.international_minutes_per_day
                return Refused(
                    403,
                    f"Limit reached: {limit:g} international minutes per day",
                    *key,
                    limit=True,
                    call_class=call.call_class,
                )
        calls.append(now)
        return None

    def international_minutes(self, key: tuple[str, str], now: float) -> float:
        spent = self._international.setdefault(key, deque())
        while spent and spent[0][0] <= now - DAY:
            spent.popleft()
        return sum(seconds for _, seconds in spent) / 60.0

    def talked(self, call: OutboundCall, seconds: float, now: float) -> None:
        """An international call ended after ``seconds`` of talk."""
        if call.call_class == "international" and seconds > 0:
            key = (call.tenant, call.person)
            self._international.setdefault(key, deque()).append((now, seconds))


__all__ = [
    "BUSINESS_PREFIX",
    "CLASSES",
    "EMERGENCY",
    "PRIVACY_PREFIX",
    "ClickToCall",
    "Dialled",
    "OutboundCall",
    "OutboundLimits",
    "Refused",
    "allowed_classes",
    "classify_number",
    "decide_click_to_call",
    "decide_outbound",
    "is_outbound_dial",
    "outbound_decision",
    "outbound_incoming",
    "parse_dialled",
    "presented_number",
]
