"""The retry delay of the presence links (the MQTT bridge, the PIDF publisher): pure.

``initial * 2**attempt`` seconds, capped at ``cap`` and jittered to 50-100 %, so that many
switches restarted against one broker (or one edge) do not all come back in the same second.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int, initial: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Delay before retry ``attempt`` (0-based): exponential, capped, 50-100 % jitter."""
    base = min(cap, initial * 2 ** min(attempt, 32))
    return float(base * (0.5 + rng() / 2))


__all__ = ["backoff_delay"]
