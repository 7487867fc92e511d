"""The week at a glance: which rule answers a call at each hour of a week.

Theory of operation: a week is cut into slots (an hour or half an hour). For every
slot the rules are asked once, at the slot's first instant in the plan's timezone, and
the matched rule's name fills the cell. Days on which the clocks change are handled
on the wall clock by the one rule of :func:`rules.wall_instant` (``explain --at`` uses it too):
the slot that does not exist (02:00 on the spring change) shows what happens at the time it
becomes (03:00 CEST) and is marked; a slot that happens twice (autumn) is its first occurrence.

Everything here is pure: :func:`week_grid` only calls :func:`rules.decide`, and
:func:`render_text` / :func:`render_svg` only build strings. The CLI does the I/O.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from rules import (
    CallInfo,
    Decision,
    DialPlan,
    PresenceSetting,
    PresenceState,
    decide,
    presence_snapshot,
    wall_instant,
)
from switch.errors import WeekViewError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
SLOT_MINUTES = (60, 30, 15)
NO_RULE = "(no rule matched)"
# Colour-blind friendly first (Okabe–Ito), then a few more distinct ones.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#7F3C8D",
    "#11A579",
    "#3969AC",
    "#F2B701",
    "#E73F74",
)
NO_RULE_COLOUR = "#BBBBBB"
VARIANT_NOTE_TEXT = "a  lower case: the same rule, but other devices ring than usual"
VARIANT_NOTE_SVG = "the same rule, but other devices ring than usual (hover for who rings)"
TERMINAL_COLOURS = ("blue", "yellow", "green", "magenta", "cyan", "red", "bright_yellow", "white")


@dataclass(frozen=True, slots=True)
class Cell:
    start: time  # wall-clock time of the slot in the plan's timezone
    rule: str | None  # the matched rule, None when no rule matched
    exists: bool = True  # False for a cell outside the plan's week (none today)
    skipped: bool = False  # the hour the clock skips in spring: shows the hour it becomes
    detail: str = ""  # who rings, for a tooltip: "Jan Müller desk, then Heimbüro …; voicemail"
    variant: bool = False  # the rule's usual slot rings others (a home-office day, say)


@dataclass(frozen=True, slots=True)
class Day:
    date: date
    cells: tuple[Cell, ...]
    notes: tuple[str, ...] = ()  # "Pfingstmontag", "summer time starts", ...


@dataclass(frozen=True, slots=True)
class WeekGrid:
    title: str
    timezone: str
    slot_minutes: int
    days: tuple[Day, ...]
    legend: tuple[tuple[str, str], ...]  # (letter, rule name), in plan order, NO_RULE last

    @property
    def has_variants(self) -> bool:
        return any(cell.variant for day in self.days for cell in day.cells)

    def letter(self, rule: str | None) -> str:
        name = NO_RULE if rule is None else rule
        for letter, legend_name in self.legend:
            if legend_name == name:
                return letter
        raise KeyError(name)


def parse_iso_week(text: str) -> date:
    """``"2027-W21"`` -> the Monday of that ISO week."""
    try:
        year_text, week_text = text.strip().upper().split("-W")
        return date.fromisocalendar(int(year_text), int(week_text), 1)
    except ValueError as exc:
        raise WeekViewError(f"week {text!r} is not an ISO week like '2027-W21'") from exc


def iso_week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def clock_change_note(day: date, zone: tzinfo) -> str | None:
    start = datetime.combine(day, time(0), tzinfo=zone).utcoffset()
    end = datetime.combine(day, time(23, 59), tzinfo=zone).utcoffset()
    if start is None or end is None or start == end:
        return None
    return "clocks go forward" if end > start else "clocks go back"


def slot_times(slot_minutes: int) -> tuple[time, ...]:
    if slot_minutes not in SLOT_MINUTES:
        raise WeekViewError(f"slot of {slot_minutes!r} minutes: use one of {SLOT_MINUTES}")
    return tuple(time(minute // 60, minute % 60) for minute in range(0, 24 * 60, slot_minutes))


def legend_for(rule_names: tuple[str, ...], seen: set[str | None]) -> tuple[tuple[str, str], ...]:
    """Letters for the rules in plan order (A, B, ...); only rules that occur in the week."""
    names = [name for name in rule_names if name in seen]
    names += sorted(name for name in seen if name is not None and name not in rule_names)
    letters = string.ascii_uppercase + string.ascii_lowercase + string.digits
    legend = [(letters[i % len(letters)], name) for i, name in enumerate(names)]
    if None in seen:
        legend.append(("·", NO_RULE))
    return tuple(legend)


def compute_week(
    *,
    monday: date,
    zone: tzinfo,
    slot_minutes: int,
    rule_at: Callable[[datetime], tuple[str | None, str]],
    day_notes: Callable[[date], tuple[str, ...]],
    rule_names: tuple[str, ...],
    title: str,
    timezone: str,
) -> WeekGrid:
    """The grid, given the rule (and who rings) at an instant and the notes for a day."""
    times = slot_times(slot_minutes)
    seen: set[str | None] = set()
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        cells = []
        for at in times:
            instant, change = wall_instant(day, at, zone)
            rule, detail = rule_at(instant)
            seen.add(rule)
            cells.append(Cell(at, rule, detail=detail, skipped=change == "skipped"))
        notes = day_notes(day)
        clock_note = clock_change_note(day, zone)
        if clock_note is not None:
            notes = (*notes, clock_note)
        days.append(Day(day, tuple(cells), notes))
    return WeekGrid(
        title=title,
        timezone=timezone,
        slot_minutes=slot_minutes,
        days=mark_variants(days),
        legend=legend_for(rule_names, seen),
    )


def mark_variants(days: list[Day]) -> tuple[Day, ...]:
    """Flag the slots where a rule rings other devices than it does in most of the week."""
    counts = Counter((cell.rule, cell.detail) for day in days for cell in day.cells if cell.exists)
    usual: dict[str | None, str] = {}
    for (rule, detail), _ in counts.most_common():
        usual.setdefault(rule, detail)
    return tuple(
        replace(
            day,
            cells=tuple(
                replace(cell, variant=cell.exists and cell.detail != usual[cell.rule])
                for cell in day.cells
            ),
        )
        for day in days
    )


def week_grid(
    plan: DialPlan,
    monday: date,
    call: CallInfo,
    presence: Mapping[str, PresenceState] | Sequence[PresenceSetting],
    *,
    slot_minutes: int = 60,
) -> WeekGrid:
    """The week starting ``monday`` for one plan, one caller and one presence state."""
    if monday.weekday() != 0:
        raise WeekViewError(f"week start {monday.isoformat()!r} is not a Monday")

    def rule_at(instant: datetime) -> tuple[str | None, str]:
        snapshot = (
            presence if isinstance(presence, Mapping) else presence_snapshot(presence, instant)
        )
        decision = decide(plan, call, snapshot, instant)
        return decision.rule, who_rings(plan, decision)

    sunday = monday + timedelta(days=6)
    title = (
        f"{plan.name} — week {iso_week_label(monday)}, "
        f"{short_date(monday)} – {short_date(sunday)} {sunday.year}"
    )
    return compute_week(
        monday=monday,
        zone=ZoneInfo(plan.timezone),
        slot_minutes=slot_minutes,
        rule_at=rule_at,
        day_notes=lambda day: day_notes(plan, day),
        rule_names=tuple(rule.name for rule in plan.rules),
        title=title,
        timezone=plan.timezone,
    )


def who_rings(plan: DialPlan, decision: Decision) -> str:
    """``"Jan Müller desk 15 s, then Heimbüro Sekretariat assistant 60 s; voicemail"``."""
    steps = []
    for step in decision.steps:
        names = []
        for target in step.targets:
            person = plan.person(target.owner)
            names.append(f"{person.name if person else target.owner} {target.device}")
        joiner = " + " if step.parallel else ", "
        steps.append(f"{joiner.join(names)} {step.timeout:g} s")
    final = decision.final.kind.value
    return f"{', then '.join(steps)}; {final}" if steps else final


def day_notes(plan: DialPlan, day: date) -> tuple[str, ...]:
    """Holiday, closed day and vacation of one day."""
    return tuple(_NOTES[kind].format(name) for kind, name in plan.day_status(day).closures())


_NOTES = {"holiday": "holiday: {}", "closed": "closed", "vacation": "vacation: {}"}


def short_date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1][:3]}"


def day_label(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()][:3]} {day.day:2d} {MONTHS[day.month - 1][:3]}"


# -- text ------------------------------------------------------------------------------------


def render_text(grid: WeekGrid, *, style: Callable[[str, str | None], str] | None = None) -> str:
    """A terminal table: one row per day, three characters per hour, a legend below.

    ``style(text, rule)`` may colour a cell (the CLI passes ``click.style``); without it
    the table is plain text.
    """
    per_hour = 60 // grid.slot_minutes
    label_width = 11
    lines = [f"{grid.title} ({grid.timezone})", ""]
    hour_width = max(3, per_hour + 1)
    header = " " * label_width + "".join(f"{hour:02d}".ljust(hour_width) for hour in range(24))
    lines.append(header.rstrip())
    for day in grid.days:
        parts = [day_label(day.date).ljust(label_width)]
        for hour in range(24):
            cells = day.cells[hour * per_hour : (hour + 1) * per_hour]
            text = ""
            for cell in cells:
                letter = grid.letter(cell.rule) if cell.exists else " "
                if cell.variant:
                    letter = letter.lower()
                text += style(letter, cell.rule) if style and cell.exists else letter
            parts.append(text + " " * (hour_width - per_hour))
        row = "".join(parts).rstrip()
        if day.notes:
            row += "  " + "; ".join(day.notes)
        lines.append(row)
    lines.append("")
    for letter, name in grid.legend:
        shown = style(letter, None if name == NO_RULE else name) if style else letter
        lines.append(f"  {shown}  {name}")
    if grid.has_variants:
        lines.append(f"  {VARIANT_NOTE_TEXT}")
    return "\n".join(lines) + "\n"


def terminal_colour(grid: WeekGrid, rule: str | None) -> str | None:
    """The terminal background colour name for a rule (None: no colour)."""
    if rule is None:
        return None
    names = [name for _, name in grid.legend if name != NO_RULE]
    return TERMINAL_COLOURS[names.index(rule) % len(TERMINAL_COLOURS)]


# -- SVG -------------------------------------------------------------------------------------


def rule_colour(grid: WeekGrid, rule: str | None) -> str:
    if rule is None:
        return NO_RULE_COLOUR
    names = [name for _, name in grid.legend if name != NO_RULE]
    return PALETTE[names.index(rule) % len(PALETTE)]


def render_svg(grid: WeekGrid, today: date | None = None, today_label: str = "today") -> str:
    """A picture of the week: days as rows, hours as columns, one coloured block per slot.
    ``today`` (the owner's page, issue 18): that day's row is framed and labelled."""
    hour_px = 36
    row_px = 30
    label_px = 170
    notes_px = 230
    top = 84
    slot_px = hour_px * grid.slot_minutes / 60
    grid_width = 24 * hour_px
    width = label_px + grid_width + notes_px
    legend_top = top + 7 * row_px + 30
    legend_rows = (len(grid.legend) + 2) // 3 + (1 if grid.has_variants else 0)
    height = legend_top + legend_rows * 24 + 16
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">',
        f"<title>{escape(grid.title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#FFFFFF"/>',
        f'<text x="16" y="28" font-size="18" font-weight="bold">{escape(grid.title)}</text>',
        f'<text x="16" y="48" font-size="12" fill="#555555">local time, '
        f"{escape(grid.timezone)}; each block is {grid.slot_minutes} minutes</text>",
    ]
    for hour in range(25):
        x: float = label_px + hour * hour_px
        out.append(
            f'<line x1="{x}" y1="{top - 4}" x2="{x}" y2="{top + 7 * row_px}" '
            'stroke="#DDDDDD" stroke-width="1"/>'
        )
        if hour < 24:
            out.append(
                f'<text x="{x + 2}" y="{top - 8}" font-size="11" fill="#333333">{hour:02d}</text>'
            )
    for row, day in enumerate(grid.days):
        y = top + row * row_px
        weight = ' font-weight="bold"' if day.notes else ""
        out.append(
            f'<text x="16" y="{y + row_px / 2 + 4}" font-size="13"{weight}>'
            f"{escape(day_label(day.date))}</text>"
        )
        for index, cell in enumerate(day.cells):
            x = label_px + index * slot_px
            end = datetime.combine(day.date, cell.start) + timedelta(minutes=grid.slot_minutes)
            when = f"{day_label(day.date)}, {cell.start:%H:%M}–{end:%H:%M}"
            skipped = " (does not exist: clocks go forward; as at the hour after)" * cell.skipped
            if not cell.exists:
                tip = f"{when}: does not exist (clocks go forward)"
                fill = "none"
                rule_attr = '""'
            else:
                name = NO_RULE if cell.rule is None else cell.rule
                tip = f"{when}{skipped}: {name}" + (f" — {cell.detail}" if cell.detail else "")
                fill = rule_colour(grid, cell.rule)
                rule_attr = quoteattr(name)
            out.append(
                f'<rect class="slot" x="{x:.1f}" y="{y + 2}" width="{slot_px - 1:.1f}" '
                f'height="{row_px - 4}" fill="{fill}" stroke="#FFFFFF" '
                f"data-rule={rule_attr}><title>{escape(tip)}</title></rect>"
            )
            if cell.variant:
                out.append(
                    f'<circle class="variant" cx="{x + (slot_px - 1) / 2:.1f}" '
                    f'cy="{y + row_px / 2}" r="{min(slot_px, row_px) / 6:.1f}" fill="none" '
                    f'stroke="#FFFFFF" stroke-width="2"><title>{escape(tip)}</title></circle>'
                )
        if day.date == today:
            out.append(
                f'<rect class="today" x="4" y="{y}" width="{label_px + grid_width - 2}" '
                f'height="{row_px}" fill="none" stroke="#111111" stroke-width="2" rx="3"/>'
                f'<text class="today-label" x="{label_px - 8}" y="{y + row_px / 2 + 4}" '
                f'font-size="11" font-weight="bold" text-anchor="end">'
                f"{escape(today_label)}</text>"
            )
        if day.notes:
            out.append(
                f'<text x="{label_px + grid_width + 10}" y="{y + row_px / 2 + 4}" '
                f'font-size="12" fill="#B00020">{escape("; ".join(day.notes))}</text>'
            )
    for index, (letter, name) in enumerate(grid.legend):
        column, row = index % 3, index // 3
        x = 16 + column * (width - 32) / 3
        y = legend_top + row * 24
        colour = NO_RULE_COLOUR if name == NO_RULE else rule_colour(grid, name)
        out.append(
            f'<rect class="legend" x="{x:.1f}" y="{y}" width="16" height="16" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{x + 22:.1f}" y="{y + 13}" font-size="13">'
            f"{escape(letter)}  {escape(name)}</text>"
        )
    if grid.has_variants:
        y = legend_top + (legend_rows - 1) * 24
        out.append(
            f'<rect x="16" y="{y}" width="16" height="16" fill="{PALETTE[0]}"/>'
            f'<circle cx="24" cy="{y + 8}" r="4" fill="none" stroke="#FFFFFF" stroke-width="2"/>'
            f'<text x="38" y="{y + 13}" font-size="13">{escape(VARIANT_NOTE_SVG)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
