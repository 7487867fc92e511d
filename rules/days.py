"""Which days are closed: public holidays (``holidays`` package), closed days and vacations."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import holidays


@dataclass(frozen=True, slots=True)
class DayStatus:
    """What kind of day a date is for one plan; ``closed`` = holiday or closed day or vacation."""

    date: dt.date
    holiday: str | None = None  # name of the public holiday
    closed_day: bool = False  # listed in closed_days
    vacation: str | None = None  # name of the vacation ("vacation" when unnamed)
    iso: str = field(init=False, repr=False, compare=False)  # "2027-05-26", for traces

    def __post_init__(self) -> None:
        object.__setattr__(self, "iso", self.date.isoformat())

    @property
    def closed(self) -> bool:
        return self.holiday is not None or self.closed_day or self.vacation is not None

    @property
    def why(self) -> str:
        """``"a public holiday (Neujahr)"``; empty for an ordinary day."""
        reasons = []
        if self.holiday is not None:
            reasons.append(f"a public holiday ({self.holiday})")
        if self.closed_day:
            reasons.append("a closed day")
        if self.vacation is not None:
            reasons.append(f"in the vacation {self.vacation!r}")
        return " and ".join(reasons)


@functools.lru_cache(maxsize=1024)
def public_holidays(country: str, subdivision: str | None, year: int) -> Mapping[dt.date, str]:
    """The public holidays of one year; pure and memoised (the package computes them)."""
    language = "de" if country == "DE" else None
    days = holidays.country_holidays(country, subdiv=subdivision, years=year, language=language)
    return dict(days)


def supported_subdivisions(country: str) -> list[str] | None:
    """The subdivision codes of ``country``, or None when the country is unknown."""
    found: list[str] | None = holidays.list_supported_countries().get(country)
    return found
