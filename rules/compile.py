"""From a parsed YAML document to a :class:`rules.plan.DialPlan`, collecting every problem.

Theory of operation: the document is validated section by section (and the rules one by one), so
that a typo in one rule does not hide an unknown person in another. Sections that validated are
then cross-checked (references to people, devices, schedules, caller lists; numbers; time zone;
holidays) and compiled into the runtime structures: schedules into minute-of-week interval
tables, caller lists into frozensets, extensions into a dict keyed by E.164 number, rule steps
into finished :class:`rules.decision.Step` objects wherever nothing depends on the call.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from rules import conditions as c
from rules import reach
from rules.days import PUBLIC, subdivision_aliases, supported_categories, supported_subdivisions
from rules.decide import warm
from rules.decision import Final, FinalKind, OnFailure, Step, Target
from rules.errors import DialPlanError, Problem
from rules.model import (
    Announcement,
    CallerAnonymous,
    CallerList,
    CallerNumber,
    CallerPrefix,
    PersonSpec,
    PlanSpec,
    PresenceNot,
    QueueStep,
    Reject,
    Ring,
    RuleSpec,
    ScheduleSpec,
    ServiceSpec,
    When,
)
from rules.numbers import normalize_number, normalize_prefix
from rules.plan import (
    DEFAULT_FEATURE_CODES,
    DialPlan,
    Extension,
    Person,
    Pick,
    Rule,
    StepPlan,
    Vacation,
)
from rules.timeofweek import ScheduleSyntaxError, Week, compile_week, parse_days
from rules.yamlsource import Document, Path

T = TypeVar("T")

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
_URI = re.compile(r"^sips?:[^\s@]+(@[^\s]+)?$")
CALLEE = "callee"
QUEUE_STEP_TIMEOUT = 3600.0  # a queue step ends by the queue's own maximum wait
QUEUE_REF = "queue:"  # ``ring: [queue:heimbuero]``, the spelling of a queue step


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


# German words for a device, and the names plans give such a device. Only a suggestion: device
# names are the author's own words (desk, mobile, platz1, anna) and nothing in the model says
# what kind of phone a device is, so reading "handy" as "mobile" would be a guess.
GERMAN_DEVICES = {
    "handy": ("mobile", "cell"),
    "mobil": ("mobile",),
    "buero": ("desk", "office"),
    "büro": ("desk", "office"),
    "schreibtisch": ("desk",),
    "zuhause": ("home",),
    "heim": ("home",),
    "homeoffice": ("home", "softphone"),
}


def unknown_device(owner: str, device: str, devices: Any, extra: tuple[str, ...] = ()) -> str:
    """``unknown device 'handy', did you mean 'mobile'? ('handy' is German for …)``."""
    close = suggest(device, [*devices, *extra])
    if close:
        return f"unknown device {device!r}{close}"
    german = next((d for d in GERMAN_DEVICES.get(device.lower(), ()) if d in devices), None)
    listed = ", ".join(devices)
    if german is not None:
        return (
            f"unknown device {device!r}, did you mean {german!r}? ({device!r} is German;"
            f" {owner}'s devices: {listed})"
        )
    return f"unknown device {device!r} ({owner}'s devices: {listed})"


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    info = PlanSpec.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # walks the tz database: once


_RULE: TypeAdapter[RuleSpec] = TypeAdapter(RuleSpec)


def _message(error: Any) -> str:
    if error["type"] == "missing" and error["loc"]:
        return f"missing required key {error['loc'][-1]!r}"
    text = str(error["msg"]).removeprefix("Value error, ")
    text = _INSTANCE.sub(
        lambda m: "a mapping of days to times" if m[1] == "ScheduleSpec" else "a mapping", text
    )
    for python, yaml_word in _WORDS:
        text = text.replace(python, yaml_word)
    return text


# pydantic speaks Python; the author wrote YAML.
_INSTANCE = re.compile(r"a valid dictionary or instance of (\w+)")
_WORDS = (
    ("a valid tuple", "a list"),
    ("a valid list", "a list"),
    ("Tuple should", "The list should"),
    ("a valid dictionary", "a mapping (key: value)"),
    ("Dictionary should", "The mapping should"),
)


class Builder:
    """Compiles one document; ``problems`` collects everything wrong with it."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = list(doc.problems)
        self.warnings: list[Problem] = []
        self.region = "DE"
        self.people: dict[str, Person] = {}
        self.service: dict[str, Person] = {}
        self.schedules: dict[str, c.ScheduleIs] = {}
        self.schedule_names: set[str] = set()  # declared, even when broken
        self.lists: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        self.numbers: list[str] = []
        self.number_marks: dict[str, tuple[int, int]] = {}
        self.broken: set[str] = set()  # sections that failed validation: skip checks against them

    # --- reporting -------------------------------------------------------------------------

    def error(self, loc: Path, message: str) -> None:
        found, _ = self.doc.position(loc)
        where = _dotted(found)
        self.problems.append(self.doc.problem(loc, f"{where}: {message}" if where else message))

    def warn(self, loc: Path, message: str) -> None:
        found, _ = self.doc.position(loc)
        where = _dotted(found)
        self.warnings.append(self.doc.problem(loc, f"{where}: {message}" if where else message))

    def validated(self, adapter: TypeAdapter[T], value: Any, loc: Path) -> T | None:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            for error in exc.errors():
                self.error((*loc, *error["loc"]), _message(error))
            return None

    # --- the whole plan --------------------------------------------------------------------

    def build(self) -> DialPlan:
        raw = self.doc.data
        if self.problems:
            raise DialPlanError(self.problems)
        if not isinstance(raw, dict):
            self.error((), "a dial plan is a mapping of keys (tenant, name, rules, ...)")
            raise DialPlanError(self.problems)
        self.moved_keys(raw)
        fields = {info.alias or name: name for name, info in PlanSpec.model_fields.items()}
        for key in raw:
            if key not in fields:
                self.error((key,), f"unknown key {key!r}{suggest(key, fields)}")
        parts: dict[str, Any] = {}
        for key, name in fields.items():
            info = PlanSpec.model_fields[name]
            if raw.get(key) is None:  # absent, or written with nothing after the colon
                if info.is_required():
                    if key in raw:
                        self.error((key,), "needs a value")
                    else:
                        self.error((), f"missing required key {key!r}")
                    self.broken.add(key)
                else:
                    parts[name] = info.get_default(call_default_factory=True)
                continue
            if key == "rules" and isinstance(raw[key], list):
                rules = [self.validated(_RULE, item, (key, i)) for i, item in enumerate(raw[key])]
                if any(r is None for r in rules):
                    self.broken.add(key)
                parts[name] = tuple(rules)
                continue
            value = self.validated(_adapter(name), raw[key], (key,))
            if value is None:
                self.broken.add(key)
            parts[name] = value
        return self.compile(parts)

    def moved_keys(self, raw: dict[str, Any]) -> None:
        """Keys written where an early sketch of the format had them: say where they go now."""
        services = raw.get("service")
        if not isinstance(services, dict):
            return
        for sid, spec in services.items():
            if isinstance(spec, dict) and "announce_as" in spec:
                self.error(
                    ("service", sid, "announce_as"),
                    "announce_as names the business: write it at the top of the plan",
                )
                raw["service"][sid] = {k: v for k, v in spec.items() if k != "announce_as"}

    def compile(self, parts: dict[str, Any]) -> DialPlan:
        self.region = parts["region"] or "DE"
        zone = self.zone(parts["timezone"])
        holiday_country, holiday_subdivision, categories = self.holidays(parts["holidays"])
        numbers = self.plan_numbers(parts["numbers"] or ())
        self.compile_schedules(parts["schedules"] or {})
        self.compile_lists(parts["caller_lists"] or {})
        for pid, spec in (parts["service"] or {}).items():
            self.service[pid] = self.compile_person(pid, spec, ("service", pid), is_service=True)
        people = parts["people"] or {}
        for pid, spec in people.items():
            if pid in self.service:
                self.error(("people", pid), f"{pid!r} is both a person and a service")
            self.people[pid] = self.compile_person(pid, spec, ("people", pid), is_service=False)
        # Which device is "current" may depend on anyone's presence: all people must be known.
        for pid, spec in people.items():
            person = self.people[pid]
            default, choices = self.person_choices(spec, person.devices, ("people", pid))
            self.people[pid] = replace(person, choices=tuple(choices), default_device=default)
        extensions = self.compile_extensions(parts["extensions"] or {}, set(numbers))
        rules = self.compile_rules(parts["rules"] or (), ("rules",), bool(extensions))
        if "rules" not in self.broken:
            self.check_rule_coverage(parts["rules"] or ())
        if not numbers and not extensions and "numbers" not in self.broken:
            self.warn(("numbers",), "the plan answers no number")
        if self.problems:
            raise DialPlanError(self.problems)
        spec = PlanSpec.model_construct(**parts)
        closed = frozenset(parts["closed_days"] or ())
        return DialPlan(
            tenant=parts["tenant"],
            name=parts["name"],
            announce_as=parts["announce_as"] or parts["name"],
            timezone=parts["timezone"],
            zone=zone,
            region=self.region,
            numbers=(*numbers, *extensions),
            people=MappingProxyType(self.people),
            service=MappingProxyType(self.service),
            feature_codes=(
                DEFAULT_FEATURE_CODES
                if parts["feature_codes"] is None
                else MappingProxyType(dict(parts["feature_codes"]))
            ),
            rules=rules,
            extensions=MappingProxyType(extensions),
            holiday_country=holiday_country,
            holiday_subdivision=holiday_subdivision,
            holiday_categories=categories,
            closed_days=closed,
            vacations=tuple(
                Vacation(v.from_, v.to, v.name or "vacation") for v in parts["vacations"] or ()
            ),
            source=self.doc.source,
            number_marks=self.number_marks,
            spec=spec,
            warnings=tuple(self.warnings),
        )

    # --- sections ----------------------------------------------------------------------------

    def zone(self, name: str | None) -> zoneinfo.ZoneInfo:
        utc = zoneinfo.ZoneInfo("UTC")
        if name is None:
            return utc
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            hint = suggest(name, _zone_names())
            self.error(("timezone",), f"unknown time zone {name!r}{hint}")
            return utc

    def holidays(self, spec: Any) -> tuple[str | None, str | None, tuple[str, ...]]:
        if spec is None:
            return None, None, (PUBLIC,)
        subdivisions = supported_subdivisions(spec.country)
        if subdivisions is None:
            self.error(("holidays", "country"), f"no public holidays known for {spec.country!r}")
            return None, None, (PUBLIC,)
        categories = self.holiday_categories(spec.country, spec.categories)
        if spec.subdivision is not None and spec.subdivision not in subdivisions:
            code = subdivision_aliases(spec.country).get(spec.subdivision)
            hint = f", did you mean {code!r}?" if code else suggest(spec.subdivision, subdivisions)
            self.error(
                ("holidays", "subdivision"),
                f"unknown subdivision {spec.subdivision!r} of {spec.country}{hint}"
                f" (known: {', '.join(subdivisions)})",
            )
            return None, None, categories
        return spec.country, spec.subdivision, categories

    def holiday_categories(self, country: str, names: tuple[str, ...] | None) -> tuple[str, ...]:
        if names is None:
            return (PUBLIC,)
        known = supported_categories(country)
        found: list[str] = []
        for i, name in enumerate(names):
            if name in known:
                if name not in found:  # [public, public]: once is enough
                    found.append(name)
                continue
            self.error(
                ("holidays", "categories", i),
                f"unknown holiday category {name!r} of {country}{suggest(name, known)}"
                f" (known: {', '.join(known)})",
            )
        if found and PUBLIC not in found:
            self.warn(
                ("holidays", "categories"),
                f"without {PUBLIC!r} the public holidays do not count, only {', '.join(found)}",
            )
        return tuple(found) or (PUBLIC,)

    def number(self, raw: str, loc: Path) -> str | None:
        e164 = normalize_number(raw, self.region)
        if e164 is None:
            self.error(loc, f"{raw!r} is not a valid phone number (region {self.region})")
        return e164

    def plan_numbers(self, raws: tuple[str, ...]) -> list[str]:
        for i, raw in enumerate(raws):
            e164 = self.number(raw, ("numbers", i))
            if e164 is None:
                continue
            if e164 in self.numbers:
                self.error(("numbers", i), f"number {raw!r} is listed twice")
            else:
                self.numbers.append(e164)
                self.number_marks[e164] = self.doc.position(("numbers", i))[1]
        return self.numbers

    def schedule(self, name: str, spec: ScheduleSpec, loc: Path) -> c.ScheduleIs | None:
        entries: list[tuple[str, str]] = []
        ok = True
        for key, texts in spec.days.items():
            try:
                parse_days(key)
            except ScheduleSyntaxError as exc:
                self.error((*loc, key), str(exc))
                ok = False
                continue
            for i, text in enumerate(texts):
                try:
                    compile_week([(key, text)])
                except ScheduleSyntaxError as exc:
                    self.error((*loc, key, i), str(exc))
                    ok = False
                else:
                    entries.append((key, text))
        if not ok:
            return None
        try:
            week = Week.of(compile_week(entries))
        except ScheduleSyntaxError as exc:
            self.error(loc, f"schedule {name!r}: {exc}")
            return None
        return c.ScheduleIs(name, week, spec.on_closed_days, week.describe())

    def compile_schedules(self, specs: Mapping[str, ScheduleSpec]) -> None:
        self.schedule_names.update(specs)
        for name, spec in specs.items():
            compiled = self.schedule(name, spec, ("schedules", name))
            if compiled is not None:
                self.schedules[name] = compiled

    def compile_lists(self, specs: Mapping[str, tuple[str, ...]]) -> None:
        for name, entries in specs.items():
            if name == "anonymous":
                self.error(("caller_lists", name), "'anonymous' is reserved for withheld numbers")
            numbers: set[str] = set()
            prefixes: list[str] = []
            for i, raw in enumerate(entries):
                if raw.endswith("*"):
                    prefix = self.prefix(raw[:-1], ("caller_lists", name, i))
                    if prefix is not None:
                        prefixes.append(prefix)
                else:
                    number = self.number(raw, ("caller_lists", name, i))
                    if number is not None:
                        numbers.add(number)
            self.lists[name] = (frozenset(numbers), tuple(prefixes))

    def prefix(self, raw: str, loc: Path) -> str | None:
        prefix = normalize_prefix(raw, self.region)
        if prefix is None:
            self.error(loc, f"{raw!r} is not a number prefix like '+49 171' or '0171'")
        return prefix

    def device_uri(self, raw: str, loc: Path) -> str:
        if _URI.match(raw):
            return raw
        number = normalize_number(raw, self.region)
        if number is None:
            self.error(loc, f"device {raw!r} is neither a sip: URI nor a valid phone number")
            return raw
        return f"tel:{number}"

    def compile_person(
        self, pid: str, spec: PersonSpec | ServiceSpec, loc: Path, *, is_service: bool
    ) -> Person:
        if pid == CALLEE:
            self.error(
                loc, f"{CALLEE!r} is reserved: it means the person whose extension was called"
            )
        devices = {
            name: self.device_uri(uri, (*loc, "devices", name))
            for name, uri in spec.devices.items()
        }
        if "current" in devices:
            self.error((*loc, "devices", "current"), "'current' is reserved for the current device")
        return Person(pid, spec.name or pid, devices, (), next(iter(devices)), is_service)

    def person_choices(
        self, spec: PersonSpec, devices: Mapping[str, str], loc: Path
    ) -> tuple[str, list[tuple[c.Condition | None, str]]]:
        def known(device: str, where: Path) -> bool:
            if device in devices:
                return True
            self.error(where, unknown_device(str(loc[-1]), device, devices))
            return False

        choices: list[tuple[c.Condition | None, str]] = []
        default = next(iter(devices))
        if isinstance(spec.current, str):
            if known(spec.current, (*loc, "current")):
                default = spec.current
        elif spec.current is not None:
            for i, choice in enumerate(spec.current):
                where = (*loc, "current", i)
                condition = self.when(choice.when, (*where, "when"), False)
                if known(choice.device, (*where, "device")):
                    choices.append((condition, choice.device))
        if spec.home_office is not None:
            office = spec.home_office
            days_text, device = (
                (office, "home") if isinstance(office, str) else (office.days, office.device)
            )
            where = (*loc, "home_office")
            try:
                days = frozenset(parse_days(days_text))
            except ScheduleSyntaxError as exc:
                self.error(where, str(exc))
            else:
                if known(device, where if isinstance(office, str) else (*where, "device")):
                    choices.append((c.WeekdayIs(days, days_text), device))
                    if not isinstance(spec.current, str):
                        # on office days "the person" is the first device that is not the home one
                        default = next((d for d in devices if d != device), device)
        return default, choices

    def compile_extensions(self, specs: Mapping[str, Any], taken: set[str]) -> dict[str, Extension]:
        found: dict[str, tuple[str, Any]] = {}
        for raw, spec in specs.items():
            loc = ("extensions", raw)
            number = self.number(raw, loc)
            if spec.person not in self.people and "people" not in self.broken:
                self.error((*loc, "person"), self.unknown_person(spec.person))
            if number is None:
                continue
            if number in taken or number in found:
                self.error(loc, f"number {raw!r} is claimed twice in this plan")
                continue
            self.number_marks[number] = self.doc.position(loc)[1]
            found[number] = (raw, spec)
        # Rules second: an extension's rules may name any number of the plan in `called:`.
        return {
            number: Extension(
                number,
                spec.person,
                self.compile_rules(spec.rules, ("extensions", raw, "rules"), True),
            )
            for number, (raw, spec) in found.items()
        }

    def unknown_person(self, name: str) -> str:
        return f"unknown person {name!r}{suggest(name, [*self.people, *self.service])}"

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


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def build_plan(doc: Document) -> DialPlan:
    """Validate and compile ``doc``; raises :class:`DialPlanError` with every problem found."""
    plan = Builder(doc).build()
    warm(plan)
    return plan
