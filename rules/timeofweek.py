"""Weekly schedules: parsing ``mon-thu: "07:00-12:00, 13:00-16:30"`` and matching a wall-clock time.

Theory of operation: a schedule is compiled once, at load time, into a sorted tuple of half-open
minute-of-week intervals ``[start, end)`` (Monday 00:00 = 0, Sunday 23:59 = 10079). A range that
crosses midnight (``22:00-06:00``) belongs to the day it starts on; its part after midnight keeps
that day as its *origin*, so holiday handling asks about the day the range started. A range that
runs past Sunday midnight wraps to Monday. Matching is a bisect over the interval starts.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import re
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_TITLES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GROUPS = {
    "daily": DAYS,
    "weekdays": DAYS[:5],
    "weekend": DAYS[5:],
}
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
HHMM = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(MINUTES_PER_DAY))
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class ScheduleSyntaxError(ValueError):
    """A day key or time range that cannot be read; the message is meant for the plan's author."""


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f", did you mean {close[0]!r}?" if close else ""


def parse_days(key: str) -> tuple[int, ...]:
    """``"mon-thu"``, ``"sat,sun"``, ``"weekdays"`` -> weekday numbers (Monday = 0)."""
    days: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        if part in GROUPS:
            days.extend(DAYS.index(d) for d in GROUPS[part])
            continue
        first, sep, last = part.partition("-")
        for word in (first, last) if sep else (first,):
            if word not in DAYS:
                choices = [*DAYS, *GROUPS, "on_closed_days"]
                raise ScheduleSyntaxError(f"unknown day {word!r}{_suggest(word, choices)}")
        a = DAYS.index(first)
        b = DAYS.index(last) if sep else a
        # "fri-mon" wraps over the weekend
        days.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    if len(set(days)) != len(days):
        raise ScheduleSyntaxError(f"day {key!r} names a day twice")
    return tuple(days)


def _minute(text: str, *, end: bool) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise ScheduleSyntaxError(f"time {text.strip()!r} is not HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not end)):
        raise ScheduleSyntaxError(f"time {text.strip()!r} does not exist (00:00 to 24:00)")
    return hour * 60 + minute


def parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """``"07:00-12:00, 22:00-06:00"`` -> ((420, 720), (1320, 1800)): minutes from the day's start.

    An end at or before the start means the range runs past midnight into the next day.
    """
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        start_text, sep, end_text = part.partition("-")
        if not sep:
            raise ScheduleSyntaxError(f"range {part.strip()!r} is not HH:MM-HH:MM")
        start = _minute(start_text, end=False)
        end = _minute(end_text, end=True)
        if end == start:
            raise ScheduleSyntaxError(f"range {part.strip()!r} is empty")
        if end < start:
            end += MINUTES_PER_DAY
        ranges.append((start, end))
    return tuple(ranges)


def fmt_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class Interval:
    start: int  # minute of week, inclusive
    end: int  # minute of week, exclusive
    origin: int  # weekday the range started on (for holiday checks)
    label: str  # "Mon 22:00-06:00", as the author wrote it, for the trace


def compile_week(entries: list[tuple[str, str]]) -> tuple[Interval, ...]:
    """``[(day_key, ranges_text), ...]`` -> sorted intervals; raises on bad syntax and overlaps."""
    pieces: list[Interval] = []
    for day_key, text in entries:
        days = parse_days(day_key)
        for start, end in parse_ranges(text):
            for day in days:
                label = f"{DAY_TITLES[day]} {fmt_minute(start)}-{fmt_minute(end % MINUTES_PER_DAY)}"
                if end == MINUTES_PER_DAY:
                    label = f"{DAY_TITLES[day]} {fmt_minute(start)}-24:00"
                s = day * MINUTES_PER_DAY + start
                e = day * MINUTES_PER_DAY + end
                if e > MINUTES_PER_WEEK:  # Sunday night into Monday morning
                    pieces.append(Interval(s, MINUTES_PER_WEEK, day, label))
                    pieces.append(Interval(0, e - MINUTES_PER_WEEK, day, label))
                else:
                    pieces.append(Interval(s, e, day, label))
    pieces.sort(key=lambda i: i.start)
    for before, after in itertools.pairwise(pieces):
        if after.start < before.end:
            raise ScheduleSyntaxError(f"ranges {before.label} and {after.label} overlap")
    return tuple(pieces)


@dataclass(frozen=True, slots=True)
class Week:
    """A compiled weekly pattern; ``find(minute_of_week)`` returns the interval holding it."""

    intervals: tuple[Interval, ...]
    starts: tuple[int, ...]

    @classmethod
    def of(cls, intervals: tuple[Interval, ...]) -> Week:
        return cls(intervals, tuple(i.start for i in intervals))

    def find(self, minute_of_week: int) -> Interval | None:
        index = bisect.bisect_right(self.starts, minute_of_week) - 1
        if index >= 0:
            interval = self.intervals[index]
            if minute_of_week < interval.end:
                return interval
        return None

    def describe(self) -> str:
        return ", ".join(dict.fromkeys(i.label for i in self.intervals)) or "never"
