"""``decide(plan, call, presence, now) -> Decision``: the routing decision for one call.

Pure and deterministic: the same arguments always give the same decision. Time semantics (see
docs/dialplan.md): ``now`` is converted to the plan's time zone and every condition looks at that
local wall-clock time. So in the autumn the doubled hour (02:00-03:00 in Europe/Berlin) is seen
twice and matches the same ranges both times; in the spring the skipped hour never occurs, and a
range inside it never matches. Ranges are half-open: 07:00-12:00 holds 07:00 but not 12:00.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rules.conditions import Context
from rules.decision import Decision, Final, FinalKind, Step, Target
from rules.numbers import ANONYMOUS_WORDS, routing_number
from rules.plan import DialPlan, Pick, Rule
from rules.presence import PresenceSnapshot
from rules.timeofweek import DAY_TITLES, HHMM

NO_MATCH = Final(FinalKind.REJECT, 480, "Temporarily Unavailable")


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call as the switch received it.

    ``caller`` None means anonymous / withheld (RFC 3323); the words "anonymous", "unknown",
    "restricted", "withheld", "private" and "" mean the same. Numbers may be raw or E.164.
    """

    called: str
    caller: str | None = None


def _resolve(rule: Rule, plan: DialPlan, ctx: Context, trace: list[str]) -> tuple[Step, ...]:
    steps: list[Step] = []
    for plan_step in rule.steps:
        if plan_step.static is not None:
            steps.append(plan_step.static)
            continue
        targets: list[Target] = []
        for source in plan_step.sources:
            if isinstance(source, Target):
                targets.append(source)
                continue
            target = _pick(source, plan, ctx, trace)
            if target is not None:
                targets.append(target)
        seen: set[str] = set()
        unique: list[Target] = []
        for target in targets:
            if target.uri not in seen:
                seen.add(target.uri)
                unique.append(target)
        if unique:
            steps.append(plan_step.build(tuple(unique)))
        else:
            trace.append("  a step with no target left is skipped")
    return tuple(steps)


def _pick(source: Pick, plan: DialPlan, ctx: Context, trace: list[str]) -> Target | None:
    person_id = source.person if source.person is not None else ctx.callee
    if person_id is None:
        trace.append(f"  {source.ref}: called {ctx.called} is not an extension, nobody to ring")
        return None
    person = plan.people[person_id]
    if source.device is not None:
        if source.device not in person.devices:
            trace.append(f"  {source.ref}: {person_id} has no device {source.device!r}")
            return None
        return person.target(source.ref, source.device)
    device, why = person.current(ctx)
    trace.append(f"  {source.ref} rings {person_id}.{device} ({why})")
    return person.target(source.ref, device)


def decide(
    plan: DialPlan, call: CallInfo, presence: PresenceSnapshot, now: dt.datetime
) -> Decision:
    """Who rings, in what order, for how long, and why. ``now`` must be timezone-aware."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now {now!r} has no time zone; pass an aware datetime")
    local = now.astimezone(plan.zone)
    region = plan.region
    called = routing_number(call.called, region)
    raw_caller = call.caller
    caller = (
        None
        if raw_caller is None or raw_caller.lower() in ANONYMOUS_WORDS
        else routing_number(raw_caller, region)
    )
    extension = plan.extensions.get(called)
    day_minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    ctx = Context(
        local.date(),
        weekday * 1440 + day_minute,
        caller,
        called,
        presence,
        extension.person if extension is not None else None,
        plan.day_status,
    )
    trace = [
        f"call from {caller or 'anonymous'} to {called} at {DAY_TITLES[weekday]} {ctx.day.iso} "
        f"{HHMM[day_minute]} {local.tzname()}{plan.zone_suffix}"
    ]
    rules = plan.rules if extension is None else extension.rules + plan.rules
    for rule in rules:
        condition = rule.condition
        if condition is None:
            trace.append(f"{rule.trace_prefix}no conditions → match")
        else:
            ok, why = condition.check(ctx)
            if not ok:
                trace.append(f"{rule.trace_prefix}{why} → no match")
                continue
            trace.append(f"{rule.trace_prefix}{why} → match")
        steps = rule.static_steps
        if steps is None:
            steps = _resolve(rule, plan, ctx, trace)
        return Decision(plan.tenant, rule.name, steps, rule.final, plan.announce_as, tuple(trace))
    trace.append("no rule matched → reject 480 Temporarily Unavailable")
    return Decision(plan.tenant, None, (), NO_MATCH, plan.announce_as, tuple(trace))
