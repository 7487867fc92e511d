"""Reading dial-plan files: one plan, or a whole directory as one immutable :class:`DialPlanSet`.

This is the only module of rules/ that touches the file system (reading the YAML files); it is
called by the CLI and by the supervisor's (re)loader, never on the call path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from rules.compile import build_plan
from rules.errors import DialPlanError, Problem
from rules.numbers import normalize_number, routing_number
from rules.plan import DialPlan
from rules.yamlsource import MAX_BYTES, parse, size_problem

SUFFIXES = (".yaml", ".yml")


def load_plan_text(text: str, source: str = "<string>") -> DialPlan:
    """Parse and compile one dial plan; raises :class:`DialPlanError` listing every problem."""
    return build_plan(parse(text, source))


def read_plan_text(path: Path) -> str:
    """The text of a dial-plan file; :class:`DialPlanError` when it cannot be read, is larger
    than :data:`rules.yamlsource.MAX_BYTES` (checked without reading more than that) or is not
    UTF-8 (the problem points at the first bad byte)."""
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
            size = os.fstat(file.fileno()).st_size if len(data) > MAX_BYTES else len(data)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DialPlanError([Problem(source, 1, 1, f"cannot read the file: {reason}")]) from None
    too_big = size_problem(source, max(size, len(data)))
    if too_big is not None:
        raise DialPlanError([too_big])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DialPlanError([_not_utf8(source, data, exc.start)]) from None


def _not_utf8(source: str, data: bytes, start: int) -> Problem:
    """Where the first byte that is not UTF-8 is, as an editor counts, and what to do."""
    line_start = data.rfind(b"\n", 0, start) + 1
    line = data.count(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8")) + 1  # valid up to ``start``
    bad = data[start]
    guess = data[start : start + 1].decode("cp1252", "replace")
    looks = f" ({guess!r} in Latin-1/Windows-1252)" if guess != "\ufffd" else ""
    return Problem(
        source,
        line,
        column,
        f"byte 0x{bad:02x}{looks} is not UTF-8: save the file as UTF-8",
    )


def load_plan(path: Path) -> DialPlan:
    """Read and compile one file; bounded in size and time (see :func:`read_plan_text`), so a
    caller may run it in a worker thread (``asyncio.to_thread(load_plan, path)``)."""
    return load_plan_text(read_plan_text(path), str(path))


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
