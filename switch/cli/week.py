"""``rufweiche week``: which rule answers at each slot of a week (text, and SVG with --svg).
The grid itself is :func:`switch.weekview.week_grid`."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from rules import CallInfo
from switch import weekview
from switch.cli.plans import load, parse_caller, parse_presence, pick_plan
from switch.errors import SwitchError, WeekViewError


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--tenant", help="Which dial plan, when PATH holds several.")
@click.option(
    "--week", "week", metavar="YYYY-Www", help="ISO week, e.g. 2027-W21 (default: this week)."
)
@click.option("--to", "to", metavar="NUMBER", help="The number called (default: the plan's first).")
@click.option(
    "--from", "caller", metavar="NUMBER|anonymous", help="The caller (default: anonymous)."
)
@click.option(
    "--presence",
    multiple=True,
    metavar="ID=STATE[ until HH:MM]",
    help="e.g. jan=away or 'heimbuero=dnd until 14:00' (until: on the Monday; repeatable).",
)
@click.option(
    "--slot",
    "slot_minutes",
    type=click.Choice(["60", "30", "15"]),
    default="60",
    show_default=True,
    help="Minutes per slot.",
)
@click.option("--svg", "svg", type=click.Path(path_type=Path), help="Also draw the week into FILE.")
def week(
    path: Path,
    tenant: str | None,
    week: str | None,
    to: str | None,
    caller: str | None,
    presence: tuple[str, ...],
    slot_minutes: str,
    svg: Path | None,
) -> None:
    """Which rule answers at each hour of a week: a table, and optionally an SVG picture."""
    plans = load([path])
    plan = pick_plan(plans, to=to, tenant=tenant)
    zone = ZoneInfo(plan.timezone)
    try:
        monday = (
            weekview.parse_iso_week(week)
            if week
            else date.fromisocalendar(*datetime.now(zone).isocalendar()[:2], 1)
        )
    except WeekViewError as exc:
        raise SwitchError(f"--week: {exc}") from None
    call = CallInfo(called=to or plan.numbers[0], caller=parse_caller(caller))
    grid = weekview.week_grid(
        plan,
        monday,
        call,
        parse_presence(plan, presence, datetime.combine(monday, time(0), tzinfo=zone)),
        slot_minutes=int(slot_minutes),
    )

    def style(text: str, rule: str | None) -> str:
        return click.style(text, fg=weekview.terminal_colour(grid, rule), bold=rule is not None)

    click.echo(weekview.render_text(grid, style=style), nl=False)
    if svg is not None:
        try:
            svg.write_text(weekview.render_svg(grid), encoding="utf-8")
        except OSError as exc:
            raise SwitchError(f"{svg}: cannot write: {exc.strerror}") from None
        click.echo(f"wrote {svg}")
