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

    def closures(self) -> tuple[tuple[str, str], ...]:
        """Why the day is closed, as ``(kind, name)`` in this order: ``("holiday", "Neujahr")``,
        ``("closed", "")``, ``("vacation", "Sommer")``; empty for an ordinary day. The trace
        (:attr:`why`) and the week view (switch/weekview.py) word them from this."""
        found = (
            ("holiday", self.holiday),
            ("closed", "" if self.closed_day else None),
            ("vacation", self.vacation),
        )
        return tuple((kind, name) for kind, name in found if name is not None)

    @property
    def why(self) -> str:
        """``"a public holiday (Neujahr)"``; empty for an ordinary day."""
        return " and ".join(_WHY[kind].format(name) for kind, name in self.closures())


_WHY = {
    "holiday": "a public holiday ({})",
    "closed": "a closed day",
    "vacation": "in the vacation {!r}",
}


PUBLIC = "public"


@functools.lru_cache(maxsize=1024)
def public_holidays(
    country: str, subdivision: str | None, year: int, categories: tuple[str, ...] = (PUBLIC,)
) -> Mapping[dt.date, str]:
    """The holidays of one year in ``categories`` (the package's: ``public``, ``catholic``, …);
    pure and memoised. Names are German wherever the package has them in German."""
    language = "de" if "de" in _country(country).supported_languages else None
    days = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=language, categories=categories
    )
    return dict(days)


@functools.cache
def _country(country: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country)  # no years: computes nothing


def supported_subdivisions(country: str) -> list[str] | None:
    """The subdivision codes of ``country``, or None when the country is unknown."""
    found: list[str] | None = holidays.list_supported_countries().get(country)
    return found


def supported_categories(country: str) -> tuple[str, ...]:
    """The holiday categories the package knows for a (supported) country, e.g. for DE
    ``("catholic", "public", "school")``: ``catholic`` holds Mariä Himmelfahrt in Bavaria and
    Fronleichnam in parts of Saxony and Thuringia, which are holidays only in some towns."""
    return tuple(_country(country).supported_categories)


def subdivision_aliases(country: str) -> Mapping[str, str]:
    """Names the package knows for subdivision codes (``{"Bayern": "BY", …}``)."""
    return dict(getattr(_country(country), "subdivisions_aliases", {}))
