"""Call forwardings of the people (issue 18: ``*21*<number>#``, ``#21#``, the owner's page).

One small JSON file in the data directory, ``forwarding.json``:
``{"<tenant>": {"<person>": "+49170…"}}``, written atomically (a temporary file renamed
over the old one) on every change, read at start and by ``rufweiche explain --data-dir``.
Not the calls database: a forwarding is state, not a record, and it must survive a
restart of the switch. :meth:`ForwardingStore.set` is the one writer; it tells its
``listeners`` (the supervisor: audit, and the snapshot for every worker).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from rules import DialPlan
from switch.call.features import Refuse, check_forward
from switch.errors import ForwardingError

FORWARDING_FILE: Final = "forwarding.json"

# (tenant, person, number or None, who, source)
Listener = Callable[[str, str, str | None, str | None, str], None]


def read_forwarding(path: Path) -> dict[str, dict[str, str]]:
    """The forwardings in ``path``; nothing when the file does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ForwardingError(f"{path}: forwardings not readable: {exc}", status=500) from exc
    if not isinstance(data, dict):
        raise ForwardingError(f"{path}: forwardings are not a map", status=500)
    return {
        str(tenant): {str(p): str(n) for p, n in people.items()}
        for tenant, people in data.items()
        if isinstance(people, dict)
    }


class ForwardingStore:
    """The forwardings of every tenant, persisted in :data:`FORWARDING_FILE`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FORWARDING_FILE
        self.targets = read_forwarding(self.path)
        self.listeners: list[Listener] = []

    def snapshot(self, tenant: str) -> Mapping[str, str]:
        return dict(self.targets.get(tenant, {}))

    def set_checked(
        self,
        plan: DialPlan,
        person: str,
        number: str | None,
        *,
        who: str | None,
        source: str,
    ) -> str | None:
        """Check ``number`` (the outbound classes of ``person``) and store it; None clears.
        Returns the E.164 number stored; :class:`ForwardingError` when it may not be."""
        if person not in plan.people:
            raise ForwardingError(f"{plan.tenant} has no person {person!r}", status=404)
        e164 = None
        if number is not None:
            checked = check_forward(plan, person, number.replace(" ", ""))
            if isinstance(checked, Refuse):
                raise ForwardingError(f"{number!r}: {checked.reason}", status=checked.status)
            e164 = checked
        self.set(plan.tenant, person, e164, who=who, source=source)
        return e164

    def set(
        self, tenant: str, person: str, number: str | None, *, who: str | None, source: str
    ) -> None:
        """Store a forwarding already checked (the worker checked ``*21*…#``)."""
        people = self.targets.setdefault(tenant, {})
        if number is None:
            people.pop(person, None)
        else:
            people[person] = number
        if not people:
            self.targets.pop(tenant, None)
        self._save()
        for listener in self.listeners:
            listener(tenant, person, number, who, source)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.targets, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ForwardingError(f"{self.path}: forwarding not saved: {exc}", status=500) from exc


__all__ = ["FORWARDING_FILE", "ForwardingStore", "read_forwarding"]
