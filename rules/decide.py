"""``decide(plan, call, presence, now) -> Decision``: the routing decision for one call.

Pure and deterministic: the same arguments always give the same decision. Time semantics (see
docs/dialplan.md): ``now`` is converted to the plan's time zone and every condition looks at that
local wall-clock time. So in the autumn the doubled hour (02:00-03:00 in Europe/Berlin) is seen
twice and matches the same ranges both times; in the spring the skipped hour never occurs, and a
range inside it never matches. Ranges are half-open: 07:00-12:00 holds 07:00 but not 12:00.

The decision is found with the conditions' cheap ``test`` methods; its trace (why each rule did
or did not match) is written only when somebody reads it (:class:`rules.trace.Trace`). The switch
rarely reads it, ``explain`` and the week view always do.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from rules.conditions import Context
from rules.decision import Decision, Final, FinalKind, Step, Target
from rules.forwarding import forward
from rules.numbers import caller_number, routing_number
from rules.plan import DialPlan, Pick, Rule, StepPlan
from rules.presence import PresenceSnapshot
from rules.trace import Trace

NO_MATCH = Final(FinalKind.REJECT, 480, "Temporarily Unavailable")


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call as the switch received it.

    ``caller`` None means anonymous / withheld (RFC 3323); the words "anonymous", "unknown",
    "restricted", "withheld", "private" and "" mean the same. Numbers may be raw or E.164.
    """

    called: str
    caller: str | None = None


def resolve(rule: Rule, plan: DialPlan, ctx: Context, trace: list[str] | None) -> tuple[Step, ...]:
    """The steps of a matched rule, with "the person" / "the callee" picked for this call."""
    steps: list[Step] = []
    for plan_step in rule.steps:
        if plan_step.static is not None:
            steps.append(plan_step.static)
            continue
        targets: list[Target] = []
        for source in plan_step.sources:
            target = source if isinstance(source, Target) else _pick(source, plan, ctx, trace)
            # one device rings once, even when two refs name it ("jan" and "jan.desk")
            if target is not None and all(t.uri != target.uri for t in targets):
                targets.append(target)
        if targets:
            steps.append(plan_step.build(tuple(targets)))
        elif trace is not None:
            trace.append("  a step with no target left is skipped")
    return tuple(steps)


def _pick(source: Pick, plan: DialPlan, ctx: Context, trace: list[str] | None) -> Target | None:
    person_id = source.person if source.person is not None else ctx.callee
    if person_id is None:
        if trace is not None:
            trace.append(f"  {source.ref}: called {ctx.called} is not an extension, nobody to ring")
        return None
    person = plan.people[person_id]
    device = source.device
    if device is not None:
        if device in person.devices:
            return person.target(source.ref, device)
        if trace is not None:
            trace.append(f"  {source.ref}: {person_id} has no device {device!r}")
        return None
    if trace is None:
        return person.target(source.ref, person.current_device(ctx))
    device, why = person.current(ctx)
    trace.append(f"  {source.ref} rings {person_id}.{device} ({why})")
    return person.target(source.ref, device)


_MEMO_MAX = 65536


def warm(plan: DialPlan) -> None:
    """Build at load time every Target and Step that :func:`resolve` can produce.

    Building a frozen dataclass costs ~2 µs on a slow core; without this, the first call to each
    of 1,400 extensions would pay it on the hot path. For each step that picks its targets when
    the call comes in, every callee and every device a "current" pick may choose is tried.
    """
    callees = {e.person for e in plan.extensions.values()} | {None}
    groups = [(plan.rules, callees)]
    groups += [(e.rules, {e.person}) for e in plan.extensions.values() if e.rules]
    for rules, candidates in groups:
        for rule in rules:
            for step in rule.steps:
                if step.static is not None:
                    continue
                uses_callee = any(isinstance(s, Pick) and s.person is None for s in step.sources)
                for callee in candidates if uses_callee else {None}:
                    _warm_step(plan, step, callee)


def _warm_step(plan: DialPlan, step: StepPlan, callee: str | None) -> None:
    options: list[list[Target | None]] = []
    for source in step.sources:
        if isinstance(source, Target):
            options.append([source])
            continue
        person_id = source.person if source.person is not None else callee
        if person_id is None:
            options.append([None])
            continue
        person = plan.people[person_id]
        devices = list(person.devices) if source.device is None else [source.device]
        options.append(
            [person.target(source.ref, d) if d in person.devices else None for d in devices]
        )
    for combination in itertools.product(*options):
        targets: list[Target] = []
        for target in combination:
            if target is not None and all(t.uri != target.uri for t in targets):
                targets.append(target)
        if targets:
            step.build(tuple(targets))


def _is_e164(raw: str) -> bool:
    """``+`` and 6 to 15 digits, not starting with 0: used as it is (see routing_number)."""
    return raw[:1] == "+" and 6 < len(raw) < 17 and raw[1] != "0" and raw[1:].isdigit()


def _memo(numbers: dict[str, str], value: str) -> str:
    """Keep the per-plan number memo bounded (callers are unbounded); returns ``value``."""
    if len(numbers) >= _MEMO_MAX:
        numbers.clear()
    return value


def decide(
    plan: DialPlan,
    call: CallInfo,
    presence: PresenceSnapshot,
    now: dt.datetime,
    forwarding: Mapping[str, str] | None = None,
) -> Decision:
    """Who rings, in what order, for how long, and why. ``now`` must be timezone-aware.

    ``forwarding`` (person -> number, issue 18: ``*21*<number>#``) replaces the devices of
    a forwarded person by the number in the steps (:func:`rules.forwarding.forward`)."""
    if now.utcoffset() is None:  # also None for a naive datetime
        raise ValueError(f"now {now!r} has no time zone; pass an aware datetime")
    zone = plan.zone
    if now.tzinfo is zone:
        # astimezone() to the same zone returns ``now`` unchanged, even a wall time that does not
        # exist (02:30 on the spring DST day); going through UTC yields the instant's real wall
        # time (03:30 CEST), so decisions depend on the instant only.
        now = now.astimezone(dt.UTC)
    local = now.astimezone(zone)
    numbers = plan._numbers  # a per-plan memo: one dict look-up per number on the hot path
    called = call.called
    if not _is_e164(called):
        known = numbers.get(called)
        if known is None:
            known = numbers[called] = _memo(numbers, routing_number(called, plan.region))
        called = known
    caller = raw_caller = call.caller
    if raw_caller is not None and not _is_e164(raw_caller):
        caller = numbers.get(raw_caller)
        if caller is None:
            caller = _memo(numbers, caller_number(raw_caller, plan.region) or "")
            numbers[raw_caller] = caller
        caller = caller or None  # "" marks a withheld number
    extension = plan.extensions.get(called)
    ctx = Context(
        local.date(),
        local.weekday() * 1440 + local.hour * 60 + local.minute,
        caller,
        called,
        presence,
        extension.person if extension is not None else None,
        plan.day_status,
    )
    rules = plan.rules
    if extension is not None and extension.rules:
        rules = extension.rules + rules
    is_extension = extension is not None
    for index, rule in enumerate(rules):
        screen = rule.extension_only
        if screen is not None and screen is not is_extension:
            continue
        condition = rule.condition
        if condition is None or condition.test(ctx):
            steps = rule.static_steps
            if steps is None:
                steps = resolve(rule, plan, ctx, None)
            trace = Trace(plan, ctx, local, rules, index, resolve)
            decision = Decision(plan.tenant, rule.name, steps, rule.final, plan.announce_as, trace)
            return forward(decision, forwarding) if forwarding else decision
    trace = Trace(plan, ctx, local, rules, None, resolve)
    return Decision(plan.tenant, None, (), NO_MATCH, plan.announce_as, trace)
