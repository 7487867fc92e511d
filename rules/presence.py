"""Presence states as the rules see them.

The presence package owns where a state comes from and where it is published; the
rules only read an immutable snapshot ``Mapping[person_id, PresenceState]``. A person
missing from the snapshot counts as :attr:`PresenceState.AVAILABLE` (a switch with no
presence source at all must still route calls as the plan intends).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class PresenceState(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"  # on a call; set from call state
    DND = "dnd"  # do not disturb
    OFFLINE = "offline"


PresenceSnapshot = Mapping[str, PresenceState]
"""person id -> state, for the people of one tenant."""
