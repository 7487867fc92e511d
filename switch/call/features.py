"""What an INVITE to a ``*`` number is: a presence feature code, the dictation box, call
forwarding (``*21*<number>#`` sets, ``#21#`` clears, as in German networks), a queue
member's code (``*45``..``*48``, issue 19), or nothing.

Pure: the worker passes the dial plans, its routes and, per plan, the dictation code; the
answer says what to do. A feature code is not a call (it shows up as a presence change);
the dictation box is a call of its own whose :class:`~rules.decision.Decision` is made
here (:func:`dictation_decision`), so the worker never builds a plan by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final as TypingFinal
from urllib.parse import unquote

from rules import DialPlan, DialPlanSet, normalize_number
from rules.decision import Decision, Final, FinalKind
from rules.presence import PresenceState
from switch.call.outbound import allowed_classes, classify_number
from switch.call.queue import MEMBER_CODES
from switch.call.sipheaders import parse_name_addr


@dataclass(frozen=True, slots=True)
class SetPresence:
    """A feature code of the caller's plan: ``person`` is now ``state``."""

    plan: DialPlan
    person: str
    state: PresenceState


@dataclass(frozen=True, slots=True)
class Dictate:
    """The dictation box: ``person`` dictates; ``decision`` records like a voicemail."""

    plan: DialPlan
    person: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class Refuse:
    """Not something this caller can dial: answer ``status`` ``reason``."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class SetForward:
    """Forward all calls of ``person`` to ``number`` (E.164); ``number`` None clears it."""

    plan: DialPlan
    person: str
    number: str | None


@dataclass(frozen=True, slots=True)
class QueueMemberCode:
    """A queue member's code from a plan's phone: ``member`` (the phone's SIP user, which
    names the member, docs/queues.md) does ``action`` (login, logout, pause, unpause)."""

    member: str
    action: str


Feature = SetPresence | Dictate | SetForward | QueueMemberCode | Refuse

FORWARD_SET: TypingFinal = "*21*"
FORWARD_CLEAR: TypingFinal = "#21#"
# Where a forward may go: the outbound classes a person may dial (never premium unless the
# plan allows it, never an emergency number or another device of the plan).
FORWARD_CLASSES: TypingFinal = frozenset({"local", "national", "mobile", "international"})


def is_feature_code(called_user: str) -> bool:
    """A ``*`` number (or ``#21#``) is a feature code, never routed by the dial plans."""
    return called_user.startswith("*") or unquote(called_user) == FORWARD_CLEAR


def parse_forward(code: str) -> tuple[bool, str | None] | None:
    """``*21*0170…#`` -> (True, "0170…"); ``#21#`` -> (True, None); anything else None.

    A ``#`` may arrive escaped (``%23``, RFC 3261 §19.1.2): it is unescaped first."""
    code = unquote(code)
    if code == FORWARD_CLEAR:
        return True, None
    if code.startswith(FORWARD_SET) and code.endswith("#"):
        number = code[len(FORWARD_SET) : -1]
        digits = number[1:] if number.startswith("+") else number
        if digits.isdigit():
            return True, number
    return None


def check_forward(plan: DialPlan, person: str, number: str) -> str | Refuse:
    """The E.164 number ``person`` may forward to, or why not (the outbound classes)."""
    call_class, e164 = classify_number(number, plan.region)
    if call_class not in FORWARD_CLASSES:
        what = "premium numbers" if call_class == "premium" else f"{call_class} numbers"
        return Refuse(403, f"Forwarding to {what} not allowed")
    if call_class not in allowed_classes(plan, person):
        return Refuse(403, f"Forwarding to {call_class} numbers not allowed for {person}")
    return e164


def dictation_decision(plan: DialPlan) -> Decision:
    """The plan of a dictation: no steps, record (issue 7)."""
    return Decision(
        tenant=plan.tenant,
        rule="dictation",
        steps=(),
        final=Final(FinalKind.VOICEMAIL),
        announce_as=plan.announce_as,
    )


def classify_feature(
    code: str,
    from_uri: str,
    plans: DialPlanSet,
    routes: Mapping[str, str],
    dictation_code: Callable[[DialPlan], str],
    *,
    from_user: str | None = None,
) -> Feature:
    """What dialling ``code`` from the device ``from_uri`` means.

    ``from_user`` is the From URI's user part as the SIP stack parsed it (parsed here from
    ``from_uri`` when not given). A queue member's code counts only from a ``sip:`` phone a
    plan lists (:func:`phone_owner`): a caller on the trunk whose From user happens to be a
    member's user must not log her out or pause her (403)."""
    action = MEMBER_CODES.get(code)
    if action is not None:
        user = parse_name_addr(from_uri).user if from_user is None else from_user
        if not user or phone_owner(from_uri, user, plans, routes) is None:
            return Refuse(403, "Forbidden")
        return QueueMemberCode(user, action)
    owner = None
    for uri in device_uris(from_uri, routes):
        owner = plans.device_owner(uri)
        if owner is not None:
            break
    if owner is None:
        return Refuse(404, "Unknown Device")
    plan, person = owner
    forwarding = parse_forward(code)
    if forwarding is not None:
        number = forwarding[1]
        if number is None:
            return SetForward(plan, person, None)
        checked = check_forward(plan, person, number)
        return checked if isinstance(checked, Refuse) else SetForward(plan, person, checked)
    if code == dictation_code(plan) and code not in plan.feature_codes:
        return Dictate(plan, person, dictation_decision(plan))
    state = plan.feature_codes.get(code)
    if state is None:
        return Refuse(404, "Unknown Feature Code")
    return SetPresence(plan, person, state)


def device_uris(from_uri: str, routes: Mapping[str, str]) -> list[str]:
    """The From URI as sent, and with its host mapped back to a route name (office)."""
    uris = [from_uri]
    parsed = parse_name_addr(from_uri)
    if parsed.user:
        bare = from_uri.split(";", 1)[0]
        uris.append(bare)
        host = bare.split("@", 1)[1] if "@" in bare else ""
        for name, address in routes.items():
            if address == host:
                uris.append(f"sip:{parsed.user}@{name}")
    return uris


def phone_owner(
    from_uri: str, from_user: str | None, plans: DialPlanSet, routes: Mapping[str, str]
) -> tuple[DialPlan, str] | None:
    """The plan and person (or service) whose SIP phone sent an INVITE, or None.

    Only ``sip:`` devices count: a caller number that equals a person's mobile number
    (``tel:``) came over the trunk and may be spoofed, so it never dials out nor changes
    a queue member's state.
    """
    for uri in device_uris(from_uri, routes):
        owner = plans.device_owner(uri)
        if owner is None:
            continue
        plan, person_id = owner
        person = plan.people.get(person_id) or plan.service.get(person_id)
        if person is not None and any(
            _sip_user(d) == from_user for d in person.devices.values() if d.startswith("sip")
        ):
            return owner
    # The secretarial service's phones are listed under ``service:`` of the plans it
    # answers for (not as people): the first such plan owns its calls out, and
    # ``*8<code>#`` chooses another one.
    for plan in plans:
        for service_id, service in plan.service.items():
            for uri in service.devices.values():
                if uri.startswith("sip") and _sip_user(uri) == from_user:
                    return plan, service_id
    return None


def _sip_user(uri: str) -> str:
    """``sip:anna@office`` -> ``anna``."""
    return uri.split(":", 1)[1].split("@", 1)[0]


def normalize_called(user: str) -> str:
    """The called number as E.164 when it is one, else the user part as sent."""
    if not user:
        return ""
    try:
        normal = normalize_number(user)
    except Exception:  # not a phone number: keep the user part as the called "number"
        return user
    return normal if normal is not None else user


def caller_number(user: str | None, uri: str) -> str | None:
    """E.164 when the caller's user part is a number, the URI otherwise, None if anonymous."""
    if not user or user.lower() in ("anonymous", "unknown") or "anonymous.invalid" in uri:
        return None
    normal = normalize_called(user)
    return normal if normal else None


__all__ = [
    "Dictate",
    "Feature",
    "QueueMemberCode",
    "Refuse",
    "SetForward",
    "SetPresence",
    "caller_number",
    "check_forward",
    "classify_feature",
    "device_uris",
    "dictation_decision",
    "is_feature_code",
    "normalize_called",
    "parse_forward",
    "phone_owner",
]
