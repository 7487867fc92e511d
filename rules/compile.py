"""From a parsed YAML document to a :class:`rules.plan.DialPlan`, collecting every problem.

Theory of operation: the document is validated section by section (and the rules one by one), so
that a typo in one rule does not hide an unknown person in another. Sections that validated are
then cross-checked (references to people, devices, schedules, caller lists; numbers; time zone;
holidays) and compiled into the runtime structures: schedules into minute-of-week interval
tables, caller lists into frozensets, extensions into a dict keyed by E.164 number, rule steps
into finished :class:`rules.decision.Step` objects wherever nothing depends on the call.

The compiler is in three layers: :mod:`rules.compilebase` (state, reporting, numbers and
schedules), :mod:`rules.compilerules` (rules, steps, conditions) and here the plan's other
sections and :func:`build_plan`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import TypeAdapter

from rules import conditions as c
from rules.compilebase import suggest, unknown_device
from rules.compilerules import CALLEE, RuleBuilder
from rules.days import PUBLIC, subdivision_aliases, supported_categories, supported_subdivisions
from rules.decide import warm
from rules.errors import DialPlanError
from rules.model import (
    PersonSpec,
    PlanSpec,
    RuleSpec,
    ScheduleSpec,
    ServiceSpec,
)
from rules.numbers import normalize_number
from rules.plan import (
    DEFAULT_FEATURE_CODES,
    DialPlan,
    Extension,
    Person,
    Vacation,
)
from rules.timeofweek import ScheduleSyntaxError, parse_days
from rules.yamlsource import Document, Path

_URI = re.compile(r"^sips?:[^\s@]+(@[^\s]+)?$")


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


class Builder(RuleBuilder):
    """Compiles one document; ``problems`` collects everything wrong with it."""

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


def build_plan(doc: Document) -> DialPlan:
    """Validate and compile ``doc``; raises :class:`DialPlanError` with every problem found."""
    plan = Builder(doc).build()
    warm(plan)
    return plan
