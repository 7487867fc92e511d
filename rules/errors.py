"""The error tree of the rules package.

::

    RulesError                 any problem raised by rules/
    ├── DialPlanError          one or more dial-plan files are broken; ``problems`` lists every one
    └── PresenceArgumentError  a presence written as text (``buero=away until 14:00``) is wrong

A :class:`Problem` points at a file position (1-based line and column, as editors count) and renders
as ``path:line:col: message`` so that editors and CI logs can jump to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class RulesError(Exception):
    """Base class of every error raised by rules/."""


class DialPlanError(RulesError):
    """One or more dial plans are invalid; ``problems`` holds every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        unique = dict.fromkeys(problems)  # keep order, drop repeats reported by two checks
        self.problems: tuple[Problem, ...] = tuple(
            sorted(unique, key=lambda p: (p.source, p.line, p.column))
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def source(self) -> str:
        """The file of the first problem (for callers that show only one)."""
        return self.problems[0].source if self.problems else ""

    @property
    def line(self) -> int:
        return self.problems[0].line if self.problems else 0


class PresenceArgumentError(RulesError, ValueError):
    """``rules.presence.parse_presence_arg`` cannot read its text; the message says why and
    lists the valid names (people and services of the plan, states)."""
