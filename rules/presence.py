"""Presence states as the rules see them.

The presence package owns where a state comes from and where it is published; the
rules only read an immutable snapshot ``Mapping[person_id, PresenceState]``. A person
missing from the snapshot counts as :attr:`PresenceState.AVAILABLE` (a switch with no
presence source at all must still route calls as the plan intends).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from rules.errors import PresenceArgumentError

if TYPE_CHECKING:
    from rules.plan import DialPlan


class PresenceState(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"  # on a call; set from call state
    DND = "dnd"  # do not disturb
    OFFLINE = "offline"


PresenceSnapshot = Mapping[str, PresenceState]
"""person id -> state, for the people of one tenant."""


# --- presence written as text (``rufweiche explain --presence``, ``rufweiche week``) ----------

_UNTIL = re.compile(r"^(?P<who>[^=\s]*)\s*=\s*(?P<state>\S*)(?:\s+until\s+(?P<until>.+?))?\s*$")


@dataclass(frozen=True, slots=True)
class PresenceSetting:
    """``buero=away until 14:00``: the state of a person or service, until a moment or not."""

    who: str  # a person or service id of the plan
    state: PresenceState
    until: dt.datetime | None = None  # aware; the state holds before this instant

    def in_effect(self, now: dt.datetime) -> bool:
        return self.until is None or now < self.until


def parse_presence_arg(plan: DialPlan, text: str, now: dt.datetime) -> PresenceSetting:
    """``"jan=away"``, ``"buero=dnd until 14:00"``, ``"jan=away until 2027-05-27 14:00"``.

    The id may be a person or a service of ``plan``. ``until HH:MM`` is that wall-clock time in
    the plan's zone on the local date of ``now`` (the moment being explained); a full date and
    time may be given instead. Raises :class:`PresenceArgumentError` naming the valid choices.
    """
    match = _UNTIL.match(text.strip())
    if match is None or not match["who"] or not match["state"]:
        raise PresenceArgumentError(
            f"{text!r}: expected ID=STATE or ID=STATE until HH:MM, e.g. 'jan=away until 14:00'"
        )
    who, state_text = match["who"], match["state"].lower()
    ids = [*plan.people, *plan.service]
    if who not in ids:
        close = difflib.get_close_matches(who, ids, n=1, cutoff=0.6)
        hint = f", did you mean {close[0]!r}?" if close else ""
        raise PresenceArgumentError(
            f"{text!r}: {plan.tenant} has no person or service {who!r}{hint}"
            f" (people: {', '.join(plan.people) or 'none'};"
            f" services: {', '.join(plan.service) or 'none'})"
        )
    try:
        state = PresenceState(state_text)
    except ValueError:
        states = ", ".join(s.value for s in PresenceState)
        raise PresenceArgumentError(
            f"{text!r}: unknown state {state_text!r} (states: {states})"
        ) from None
    until = None if match["until"] is None else _until(text, match["until"], plan, now)
    return PresenceSetting(who, state, until)


def _until(text: str, raw: str, plan: DialPlan, now: dt.datetime) -> dt.datetime:
    try:
        if len(raw) <= 5:
            clock = dt.time.fromisoformat(raw.zfill(5))
            wall = dt.datetime.combine(now.astimezone(plan.zone).date(), clock)
        else:
            wall = dt.datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        raise PresenceArgumentError(
            f"{text!r}: until {raw!r} is not HH:MM or YYYY-MM-DD HH:MM"
        ) from None
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=plan.zone)
    return wall.astimezone(dt.UTC)  # a wall time the clock skips: the instant Python gives it


def presence_snapshot(settings: Iterable[PresenceSetting], now: dt.datetime) -> PresenceSnapshot:
    """The snapshot for ``decide`` at ``now``: settings whose ``until`` has passed are left out
    (that person or service counts as available, as with no presence information at all)."""
    return MappingProxyType({s.who: s.state for s in settings if s.in_effect(now)})
