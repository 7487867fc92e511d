"""The dial-plan compiler's rules half: rules, steps, targets and conditions.

:class:`RuleBuilder` turns the validated ``rules:`` of a plan (and of its extensions) into
:class:`rules.plan.Rule` objects: the conditions of ``when:``, the steps with their targets
(finished :class:`rules.decision.Step` objects wherever nothing depends on the call), the
final action, and the warnings about rules that can never match or steps nobody reaches.
:class:`rules.compile.Builder` adds the plan's other sections.
"""

from __future__ import annotations

from typing import Any

from rules import conditions as c
from rules import reach
from rules.compilebase import BuilderBase, suggest, unknown_device
from rules.decision import Final, FinalKind, OnFailure, Step, Target
from rules.model import (
    Announcement,
    CallerAnonymous,
    CallerList,
    CallerNumber,
    CallerPrefix,
    PresenceNot,
    QueueStep,
    Reject,
    Ring,
    RuleSpec,
    ScheduleSpec,
    When,
)
from rules.plan import (
    Pick,
    Rule,
    StepPlan,
)
from rules.timeofweek import ScheduleSyntaxError, parse_days
from rules.yamlsource import Path

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}
# When every step failed and the rule names no final action (documented in docs/dialplan.md).
DEFAULT_FINAL = Final(FinalKind.REJECT, 480, "Temporarily Unavailable")
CALLEE = "callee"
QUEUE_STEP_TIMEOUT = 3600.0  # a queue step ends by the queue's own maximum wait
QUEUE_REF = "queue:"  # ``ring: [queue:heimbuero]``, the spelling of a queue step


class RuleBuilder(BuilderBase):
    """The rules of a plan and of its extensions (the methods :class:`rules.compile.Builder`
    calls: :meth:`compile_rules`, :meth:`when`)."""

    # --- rules ---------------------------------------------------------------------------------

    def compile_rules(
        self, specs: tuple[RuleSpec | None, ...], loc: Path, has_extensions: bool
    ) -> tuple[Rule, ...]:
        seen: set[str] = set()
        rules = []
        tried: list[tuple[Path, Rule, tuple[c.Condition, ...]]] | None = []  # rules.reach
        for i, spec in enumerate(specs):
            if spec is None:  # failed validation, already reported
                continue
            where = (*loc, i)
            if spec.name in seen:
                self.error((*where, "name"), f"rule name {spec.name!r} is used twice")
            seen.add(spec.name)
            condition = self.when(spec.when, (*where, "when"), has_extensions)
            rule = self.rule(spec, condition, where, has_extensions)
            rules.append(rule)
            if tried is not None:
                tried = self.check_reach(
                    tried, where, rule, spec.when is None and loc == ("rules",)
                )
        return tuple(rules)

    def check_reach(
        self,
        tried: list[tuple[Path, Rule, tuple[c.Condition, ...]]],
        where: Path,
        rule: Rule,
        plain_catch_all: bool,
    ) -> list[tuple[Path, Rule, tuple[c.Condition, ...]]] | None:
        """Warn when ``rule`` can never match (rules.reach); None: stop checking this list."""
        conjuncts = reach.atoms(rule.condition)
        why = reach.contradiction(conjuncts)
        if why is not None:
            self.warn(where, f"rule {rule.name!r} never matches: {why}")
            return tried
        for earlier_where, earlier, earlier_atoms in tried:
            if reach.shadows(earlier_atoms, conjuncts):
                source, (line, _) = self.doc.source, self.doc.position(earlier_where)[1]
                self.warn(
                    where,
                    f"rule {rule.name!r} never matches: the earlier rule {earlier.name!r}"
                    f" ({source}:{line}) matches every call it would match",
                )
                return tried
        if plain_catch_all:  # the rules after it get check_rule_coverage's one warning
            return None
        tried.append((where, rule, conjuncts))
        return tried

    def rule(
        self, spec: RuleSpec, condition: c.Condition | None, loc: Path, has_extensions: bool
    ) -> Rule:
        steps: list[StepPlan] = []
        final = DEFAULT_FINAL
        for i, item in enumerate(spec.then):
            where = (*loc, "then", i)
            if final is not DEFAULT_FINAL:
                self.error(
                    where, "nothing can follow a final action (reject, voicemail, announcement)"
                )
                break
            if isinstance(item, Ring):
                steps.append(self.step(item, where, has_extensions))
            elif isinstance(item, QueueStep):
                steps.append(_queue_step(item.queue))
            else:
                final = self.final(item)
        static = None
        if all(s.static is not None for s in steps):
            static = tuple(s.static for s in steps if s.static is not None)
        return Rule(spec.name, condition, tuple(steps), final, static, _extension_only(condition))

    @staticmethod
    def final(item: str | Reject | Announcement | Any) -> Final:
        if item == "voicemail":
            return Final(FinalKind.VOICEMAIL, 480, "Temporarily Unavailable")
        if isinstance(item, Announcement):
            return Final(FinalKind.ANNOUNCEMENT, 480, "Temporarily Unavailable", item.announcement)
        status = item.reject.status if isinstance(item, Reject) else 603
        reason = item.reject.reason if isinstance(item, Reject) else None
        return Final(FinalKind.REJECT, status, reason or REASONS.get(status, "Rejected"))

    def step(self, spec: Ring, loc: Path, has_extensions: bool) -> StepPlan:
        queues = [ref for ref in spec.ring if ref.startswith(QUEUE_REF)]
        if queues:  # ``ring: [queue:heimbuero]`` is the queue step ``{queue: heimbuero}``
            name = queues[0].removeprefix(QUEUE_REF)
            if len(spec.ring) > 1:
                self.error(
                    (*loc, "ring"),
                    f"queue:{name} is a step of its own; write the others as a step before it",
                )
            elif "." in name:
                self.error((*loc, "ring", 0), f"{queues[0]!r} is not a queue name")
            return _queue_step(name)
        sources: list[Target | Pick] = []
        for i, ref in enumerate(spec.ring):
            sources.extend(self.targets(ref, (*loc, "ring", i), has_extensions))
        if spec.parallel is False and len(sources) > 1:
            self.error(
                (*loc, "parallel"),
                "a step rings its targets together; write one step per target to ring them in turn",
            )
        plan = StepPlan(
            tuple(sources),
            spec.timeout,
            spec.parallel,
            spec.confirm,
            spec.on_busy,
            spec.on_no_answer,
            spec.on_unreachable,
            static=None,
        )
        if sources and all(isinstance(s, Target) for s in sources):
            targets: list[Target] = []
            for source in sources:  # one device rings once, even when named twice
                if isinstance(source, Target) and all(t.uri != source.uri for t in targets):
                    targets.append(source)
            return _with_static(plan, tuple(targets))
        return plan

    def targets(self, ref: str, loc: Path, has_extensions: bool) -> list[Target | Pick]:
        owner, _, device = ref.partition(".")
        if owner == CALLEE:
            if not has_extensions:
                self.error(loc, f"{ref!r}: 'callee' needs an extensions section")
                return []
            chosen = None if device in ("", "current") else device
            return [Pick(ref, None, chosen)]
        if owner in self.service:
            person = self.service[owner]
            if device in ("", "current"):
                return [person.target(ref, d) for d in person.devices]
            if device in person.devices:
                return [person.target(ref, device)]
            self.error(loc, f"{ref!r}: {unknown_device(owner, device, person.devices)}")
            return []
        if owner in self.people:
            person = self.people[owner]
            if device in ("", "current"):
                return [Pick(ref, owner, None)]
            if device in person.devices:
                return [person.target(ref, device)]
            message = unknown_device(owner, device, person.devices, ("current",))
            self.error(loc, f"{ref!r}: {message}")
            return []
        if "people" not in self.broken and "service" not in self.broken:
            self.error(loc, self.unknown_person(owner))
        return []

    def when(self, spec: When | None, loc: Path, has_extensions: bool) -> c.Condition | None:
        if spec is None:
            return None
        parts: list[c.Condition] = []
        add = parts.append
        if spec.schedule is not None:
            add(self.schedule_condition(spec.schedule, (*loc, "schedule")))
        if spec.weekday is not None:
            try:
                add(c.WeekdayIs(frozenset(parse_days(spec.weekday)), spec.weekday))
            except ScheduleSyntaxError as exc:
                self.error((*loc, "weekday"), str(exc))
        for kind in ("holiday", "closed", "vacation"):
            value = getattr(spec, kind)
            if value is not None:
                add(c.DayKindIs(kind, value))
        if spec.caller is not None:
            forms = [self.caller(form, (*loc, "caller", i)) for i, form in enumerate(spec.caller)]
            add(forms[0] if len(forms) == 1 else c.AnyOf(tuple(forms)))
        if spec.called is not None:
            numbers = [self.number(raw, (*loc, "called", i)) for i, raw in enumerate(spec.called)]
            for raw, number in zip(spec.called, numbers, strict=True):
                if number is not None and number not in self.number_marks:
                    self.error((*loc, "called"), f"{raw!r} is not one of this plan's numbers")
            add(c.CalledIn(frozenset(n for n in numbers if n is not None)))
        if spec.extension is not None:
            add(c.IsExtension(spec.extension))
        for who, form in (spec.presence or {}).items():
            add(self.presence(who, form, (*loc, "presence", who), has_extensions))
        for combinator, items in (("all", spec.all_), ("any", spec.any_)):
            if items is not None:
                subs = [
                    self.when(s, (*loc, combinator, i), has_extensions) for i, s in enumerate(items)
                ]
                real = tuple(s if s is not None else c.AllOf(()) for s in subs)
                add(c.AllOf(real) if combinator == "all" else c.AnyOf(real))
        if spec.not_ is not None:
            add(c.Not(self.when(spec.not_, (*loc, "not"), has_extensions) or c.AllOf(())))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else c.AllOf(tuple(parts))

    def schedule_condition(self, spec: tuple[str, ...] | ScheduleSpec, loc: Path) -> c.Condition:
        if isinstance(spec, ScheduleSpec):
            return self.schedule("inline", spec, loc) or c.AllOf(())
        found: list[c.Condition] = []
        for i, name in enumerate(spec):
            if name in self.schedules:
                found.append(self.schedules[name])
            elif "schedules" not in self.broken and name not in self.schedule_names:
                hint = suggest(name, self.schedule_names)
                self.error((*loc, i) if len(spec) > 1 else loc, f"unknown schedule {name!r}{hint}")
        return found[0] if len(found) == 1 else c.AnyOf(tuple(found))

    def caller(self, form: Any, loc: Path) -> c.Condition:
        if isinstance(form, CallerAnonymous):
            return c.CallerAnonymousIs(form.anonymous)
        if isinstance(form, str):
            if form == "anonymous":
                return c.CallerAnonymousIs(True)
            # model_construct: the word was validated as text; its meaning is checked below
            if form[:1] in "+0123456789":
                form = CallerNumber.model_construct(number=(form,))
            else:
                form = CallerList.model_construct(list=(form,))
        if isinstance(form, CallerNumber):
            parsed = [self.number(raw, (*loc, "number")) for raw in form.number]
            found = frozenset(n for n in parsed if n is not None)
            return c.CallerIn(found, (), f"number {', '.join(sorted(found))}")
        if isinstance(form, CallerPrefix):
            prefixes = [self.prefix(raw, (*loc, "prefix")) for raw in form.prefix]
            kept = tuple(p for p in prefixes if p is not None)
            return c.CallerIn(frozenset(), kept, f"prefix {', '.join(kept)}")
        numbers: set[str] = set()
        starts: list[str] = []
        for name in form.list:
            if name in self.lists:
                numbers |= self.lists[name][0]
                starts.extend(self.lists[name][1])
            elif "caller_lists" not in self.broken:
                self.error(loc, f"unknown caller list {name!r}{suggest(name, self.lists)}")
        names = ", ".join(repr(n) for n in form.list)
        return c.CallerIn(frozenset(numbers), tuple(starts), f"list {names}")

    def presence(self, who: str, form: Any, loc: Path, has_extensions: bool) -> c.Condition:
        if who == CALLEE and not has_extensions:
            self.error(loc, "'callee' needs an extensions section")
        elif who not in (CALLEE, *self.people, *self.service) and "people" not in self.broken:
            self.error(loc, self.unknown_person(who))
        if isinstance(form, PresenceNot):
            states, negate = form.not_, True
        else:
            states, negate = form, False
        text = ("not " if negate else "") + "/".join(s.value for s in states)
        return c.PresenceIs(who, frozenset(states), negate, text)

    def check_rule_coverage(self, specs: tuple[RuleSpec | None, ...]) -> None:
        if not specs:
            self.warn(("rules",), "the plan has no rules: every call is rejected with 480")
        elif specs[-1] is not None and specs[-1].when is not None:
            self.warn(
                ("rules", len(specs) - 1),
                f"the last rule {specs[-1].name!r} has conditions: calls that no rule matches "
                "are rejected with 480",
            )
        catch_all = next((r for r in specs[:-1] if r is not None and r.when is None), None)
        if catch_all is not None:
            first_unreached = specs.index(catch_all) + 1
            self.warn(
                ("rules", first_unreached),
                f"rules after {catch_all.name!r} are never tried: it has no conditions",
            )


def _extension_only(condition: c.Condition | None) -> bool | None:
    """The ``extension:`` value a rule requires at its top level, if any."""
    parts = condition.conditions if isinstance(condition, c.AllOf) else (condition,)
    for part in parts:
        if isinstance(part, c.IsExtension):
            return part.expected
    return None


def _with_static(plan: StepPlan, targets: tuple[Target, ...]) -> StepPlan:
    return StepPlan(
        plan.sources,
        plan.timeout,
        plan.parallel,
        plan.confirm,
        plan.on_busy,
        plan.on_no_answer,
        plan.on_unreachable,
        static=plan.build(targets),
    )


def _queue_step(name: str) -> StepPlan:
    """A queue step: no targets of its own; the queue (settings) decides whom to ring. Whether
    the queue exists is checked by the switch, which holds the queues (issue 19)."""
    step = Step((), QUEUE_STEP_TIMEOUT, queue=name)
    nxt = OnFailure.NEXT
    return StepPlan((), step.timeout, None, False, nxt, nxt, nxt, static=step)
