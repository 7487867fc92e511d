"""How many legs a worker may still fill: capacity, the spare leg, reservations.

Capacity is counted, not discovered by a failing ``makeCall``: a process has a fixed number
of pjsua call slots; an admitted call reserves one outbound leg at once, so a call either
gets the legs it needs or a 503 with Retry-After (:data:`RETRY_AFTER_S`).
"""

from __future__ import annotations

from typing import Final

RETRY_AFTER_S: Final = 5
"""The Retry-After (RFC 3261 §20.33) of a 503 for a full or draining worker."""


WORKER_LEGS: Final = 4
"""pjsua call slots per worker process (``switch.pjsua.epconfig.MAX_LEGS``, the wheel's
compile-time limit; a test holds the two equal). Here for the supervisor, which must not
import pjsua2."""


def calls_per_worker(emergency_reserve: int, legs: int = WORKER_LEGS) -> int:
    """Bridged calls (two legs each) a worker takes with ``emergency_reserve`` legs kept
    free: the edge's ``maxload``, so that the edge never offers a worker a call its
    :class:`LegBudget` would refuse, and a 110/112 call finds its legs on every worker."""
    return max(1, (legs - emergency_reserve) // 2)


class LegBudget:
    """The legs of one worker: ``capacity`` minus legs in use minus legs reserved."""

    def __init__(
        self, max_legs: int, *, spare_leg: bool = False, emergency_reserve: int = 0
    ) -> None:
        # pjsua itself answers 486 (statelessly) when all its call slots hold legs. Keeping
        # one slot spare makes every overflow call get our 503 instead.
        self.max_legs = max_legs
        self.capacity = max_legs - (1 if spare_leg else 0)
        self.reserved = 0
        # Legs ordinary calls leave free, so that a 110/112 call always finds its trunk leg.
        self.emergency_reserve = emergency_reserve

    def free(self, in_use: int) -> int:
        """Legs neither in use nor reserved."""
        return self.capacity - in_use - self.reserved

    def admits(self, in_use: int) -> bool:
        """A new call (whose INVITE already holds a leg) can get one more."""
        return self.free(in_use) - self.emergency_reserve >= 1

    def admits_emergency(self, in_use: int) -> bool:
        """An emergency call: the reserve, and the spare leg too, are its to take."""
        return self.max_legs - in_use - self.reserved >= 1

    def reserve(self) -> int:
        """Hold one leg for an admitted call; returns how many the call now holds (1)."""
        self.reserved += 1
        return 1

    def release(self, held: int) -> int:
        """Give back what a call held; returns what it holds afterwards (0)."""
        self.reserved -= held
        return 0

    def take(self, held: int, in_use: int, *, emergency: bool = False) -> tuple[bool, int]:
        """A Dial: use one held leg, else a free one. (may it dial, legs still held)."""
        if held > 0:
            self.reserved -= 1
            return True, held - 1
        if emergency:
            return self.max_legs - in_use - self.reserved >= 1, held
        return self.free(in_use) - self.emergency_reserve >= 1, held


__all__ = ["RETRY_AFTER_S", "WORKER_LEGS", "LegBudget", "calls_per_worker"]
