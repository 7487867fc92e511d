"""Reading dial-plan files: one plan, or a whole directory as one immutable :class:`DialPlanSet`.

This is the only module of rules/ that touches the file system (reading the YAML files); it is
called by the CLI and by the supervisor's (re)loader, never on the call path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from rules.compile import build_plan
from rules.errors import DialPlanError, Problem
from rules.numbers import normalize_number, routing_number
from rules.plan import DialPlan
from rules.yamlsource import parse

SUFFIXES = (".yaml", ".yml")


def load_plan_text(text: str, source: str = "<string>") -> DialPlan:
    """Parse and compile one dial plan; raises :class:`DialPlanError` listing every problem."""
    return build_plan(parse(text, source))


def load_plan(path: Path) -> DialPlan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DialPlanError([Problem(str(path), 1, 1, f"cannot read the file: {reason}")]) from None
    return load_plan_text(text, str(path))


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        else:
            yield path


def _sip_user(uri: str) -> str:
    """``"sip:201@office;transport=udp"`` -> ``"sip:201@office"`` (parameters off, host lower)."""
    head = uri.split(";", 1)[0].split("?", 1)[0]
    user, at, host = head.partition("@")
    return f"{user}@{host.lower()}" if at else head


class DialPlanSet:
    """All plans of a deployment, indexed by the numbers they answer. Immutable."""

    def __init__(self, plans: Iterable[DialPlan], warnings: Iterable[Problem] = ()) -> None:
        by_tenant: dict[str, DialPlan] = {}
        by_number: dict[str, DialPlan] = {}
        owners: dict[str, tuple[DialPlan, str]] = {}
        problems: list[Problem] = []
        for plan in plans:
            other = by_tenant.get(plan.tenant)
            if other is not None:
                problems.append(
                    Problem(plan.source, 1, 1, f"tenant {plan.tenant!r} is also in {other.source}")
                )
                continue
            by_tenant[plan.tenant] = plan
            for number in plan.numbers:
                claimed = by_number.get(number)
                if claimed is not None:
                    line, col = plan.number_marks.get(number, (1, 1))
                    other_line = claimed.number_marks.get(number, (1, 1))[0]
                    problems.append(
                        Problem(
                            plan.source,
                            line,
                            col,
                            f"number {number} is claimed by tenant {plan.tenant!r} and by "
                            f"tenant {claimed.tenant!r} in {claimed.source}:{other_line}",
                        )
                    )
                    continue
                by_number[number] = plan
            for person in plan.people.values():
                for uri in person.devices.values():
                    owners.setdefault(_sip_user(uri), (plan, person.id))
            for number, extension in plan.extensions.items():
                owners.setdefault(f"tel:{number}", (plan, extension.person))
        if problems:
            raise DialPlanError(problems)
        self.plans: Mapping[str, DialPlan] = MappingProxyType(by_tenant)
        self._by_number = MappingProxyType(by_number)
        self._owners = MappingProxyType(owners)
        self.warnings: tuple[Problem, ...] = tuple(warnings) + tuple(
            w for plan in by_tenant.values() for w in plan.warnings
        )

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[DialPlan]:
        return iter(self.plans.values())

    def __repr__(self) -> str:
        return f"<DialPlanSet {sorted(self.plans)}>"

    def for_number(self, called: str, region: str = "DE") -> DialPlan | None:
        """The plan answering ``called`` (raw or E.164), or None."""
        return self._by_number.get(routing_number(called, region))

    def device_owner(self, uri: str, region: str = "DE") -> tuple[DialPlan, str] | None:
        """Which plan and person own a device URI or a number (for feature codes)."""
        found = self._owners.get(_sip_user(uri))
        if found is not None:
            return found
        number = normalize_number(uri, region)
        return self._owners.get(f"tel:{number}") if number is not None else None


def load_dialplans(paths: Iterable[Path]) -> DialPlanSet:
    """Load files and directories (``*.yaml``, ``*.yml``) as one set; all problems in one error."""
    plans: list[DialPlan] = []
    problems: list[Problem] = []
    for path in _files(paths):
        try:
            plans.append(load_plan(path))
        except DialPlanError as exc:
            problems.extend(exc.problems)
    if problems:
        try:
            DialPlanSet(plans)
        except DialPlanError as exc:
            problems.extend(exc.problems)
        raise DialPlanError(problems)
    return DialPlanSet(plans)
