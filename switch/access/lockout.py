"""Failed logins counted per user and per source address, with an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class Lockout:
    """Failed logins per key ("user:alice", "ip:10.0.0.7"): after ``threshold`` failures the
    key is refused for ``base`` seconds, doubling with every further failure up to ``cap``.
    A success clears the user's key; a quiet ``forget`` period clears any key."""

    clock: Callable[[], float]
    threshold: int = 5
    base: float = 30.0
    cap: float = 900.0
    forget: float = 3600.0
    _keys: dict[str, _Failures] = field(default_factory=dict)

    def _get(self, key: str) -> _Failures:
        now = self.clock()
        entry = self._keys.get(key)
        if entry is None or (now - entry.last > self.forget and now >= entry.locked_until):
            entry = self._keys[key] = _Failures()
        return entry

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: go ahead)."""
        now = self.clock()
        return max((max(0.0, self._get(k).locked_until - now) for k in keys), default=0.0)

    def failures(self, key: str) -> int:
        return self._get(key).count

    def failed(self, *keys: str) -> float:
        """Count one failure on each key; returns the longest lock now in force."""
        now = self.clock()
        for key in keys:
            entry = self._get(key)
            entry.count += 1
            entry.last = now
            over = entry.count - self.threshold
            if over >= 0:
                entry.locked_until = now + min(self.cap, self.base * 2**over)
        if len(self._keys) > 10_000:  # a spray from many addresses must not grow us forever
            self._keys = {k: v for k, v in self._keys.items() if v.locked_until > now}
        return self.retry_after(*keys)

    def succeeded(self, key: str) -> None:
        self._keys.pop(key, None)
