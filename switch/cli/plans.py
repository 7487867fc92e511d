"""``rufweiche check`` and ``rufweiche explain``, and what every dial-plan command shares:
loading the files named on the command line, picking a plan, reading --presence/--at/--from.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

import click
import phonenumbers

from rules import (
    CallInfo,
    DialPlan,
    DialPlanError,
    DialPlanSet,
    PresenceArgumentError,
    PresenceSetting,
    PresenceState,
    decide,
    load_dialplans,
    parse_presence_arg,
    presence_snapshot,
    wall_instant,
)
from rules.decision import Decision, FinalKind, OnFailure, Step, Target
from switch.cli import weekview
from switch.errors import SwitchError

DEFAULT_DIALPLANS = Path("dialplans")
ANONYMOUS = "anonymous"

# -- loading -----------------------------------------------------------------------------------


def dialplan_files(paths: Iterable[Path]) -> list[Path]:
    """Files named on the command line, directories expanded to their *.yaml / *.yml."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise SwitchError(f"{path}: no dial plans (*.yaml) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SwitchError(f"{path}: no such file or directory")
    return files


def load(paths: Iterable[Path]) -> DialPlanSet:
    """Load and validate; on problems, print each one and exit 1."""
    files = dialplan_files(paths)
    try:
        plans = load_dialplans(files)
    except DialPlanError as exc:
        fail_with_problems(exc)
    for warning in plans.warnings:
        click.echo(f"{warning} (warning)", err=True)
    return plans


def fail_with_problems(exc: DialPlanError) -> NoReturn:
    problems = exc.problems or (str(exc),)
    for problem in problems:
        click.echo(str(problem), err=True)
    count = len(problems)
    raise SwitchError(f"{count} problem{'s' if count != 1 else ''} found, nothing loaded")


def pick_plan(plans: DialPlanSet, *, to: str | None, tenant: str | None) -> DialPlan:
    if tenant is not None:
        if tenant not in plans.plans:
            raise SwitchError(
                f"tenant {tenant!r} not found{did_you_mean(tenant, plans.plans)}; "
                f"tenants: {listing(plans.plans)}"
            )
        return plans.plans[tenant]
    if to is not None:
        plan = plans.for_number(to)
        if plan is None:
            numbers = [number for plan in plans for number in plan.numbers]
            raise SwitchError(
                f"number {to!r} belongs to no dial plan{did_you_mean(to, numbers)}; "
                f"numbers: {listing(numbers, sort=False)}"
            )
        return plan
    if len(plans) == 1:
        return next(iter(plans))
    raise SwitchError(
        f"{len(plans)} dial plans loaded: choose one with --tenant "
        f"({', '.join(sorted(plans.plans))}) or --to NUMBER"
    )


def listing(names: Iterable[str], *, limit: int = 10, sort: bool = True) -> str:
    """``"a, b, c"``, or the first ``limit`` and how many there are in all."""
    items = sorted(names) if sort else list(names)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", … ({len(items)} in all)"


def did_you_mean(wanted: str, names: Iterable[str]) -> str:
    if wanted[:1] in "+0123456789":  # a phone number: compare without its punctuation
        wanted = "".join(ch for ch in wanted if ch == "+" or ch.isdigit())
    close = difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_presence(
    plan: DialPlan, items: Sequence[str], now: datetime
) -> tuple[PresenceSetting, ...]:
    """``("jan=away", "heimbuero=dnd until 14:00", ...)``: people and services of ``plan``,
    ``until`` read on the local date of ``now``; the valid names in every error."""
    try:
        return tuple(parse_presence_arg(plan, item, now) for item in items)
    except PresenceArgumentError as exc:
        raise SwitchError(f"--presence {exc}") from None


def parse_caller(raw: str | None) -> str | None:
    if raw is None or raw.strip().lower() == ANONYMOUS:
        return None
    return raw.strip()


def parse_local_time(raw: str | None, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """``--at`` as wall time in the plan's timezone; a note when the clock skips or repeats it."""
    if raw is None:
        return datetime.now(zone), None
    try:
        wall = datetime.fromisoformat(raw.strip().replace(" ", "T", 1))
    except ValueError:
        raise SwitchError(f"--at {raw!r}: expected a local time like '2027-05-27 10:00'") from None
    if wall.tzinfo is not None:
        return wall.astimezone(zone), None
    instant, change = wall_instant(wall.date(), wall.time(), zone)
    if change == "skipped":
        return instant, f"{wall:%H:%M} does not exist that day (clocks go forward): {instant:%H:%M}"
    if change == "repeated":
        return instant, f"{wall:%H:%M} happens twice that day (clocks go back): the first one"
    return instant, None


# -- check -------------------------------------------------------------------------------------


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate dial plans (default: dialplans/). Prints every problem as path:line:col."""
    if not paths and not DEFAULT_DIALPLANS.is_dir():
        raise SwitchError(f"no {DEFAULT_DIALPLANS}/ directory here: name the dial plans to check")
    plans = load(paths or (DEFAULT_DIALPLANS,))
    for plan in plans:
        click.echo(summary_line(plan))
    count = len(plans)
    click.echo(f"{count} dial plan{'s' if count != 1 else ''} ok")


def summary_line(plan: DialPlan) -> str:
    parts = [
        f"{plan.tenant}: {plan.name}",
        plural(len(plan.numbers), "number"),
        plural(len(plan.people), "person", "people"),
        plural(len(plan.rules), "rule"),
    ]
    if plan.extensions:
        parts.append(plural(len(plan.extensions), "extension"))
    parts += [f"holidays {holiday_region(plan)}", plan.timezone]
    if plan.warnings:
        parts.append(plural(len(plan.warnings), "warning"))
    return ", ".join(parts) + f" ({plan.source})"


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def holiday_region(plan: DialPlan) -> str:
    if plan.holiday_country is None:
        return "none"
    if plan.holiday_subdivision is None:
        return plan.holiday_country
    return f"{plan.holiday_country}-{plan.holiday_subdivision}"


# -- explain -----------------------------------------------------------------------------------


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, metavar="NUMBER", help="The number that was called.")
@click.option(
    "--from", "caller", metavar="NUMBER|anonymous", help="The caller (default: anonymous)."
)
@click.option(
    "--at", "at", metavar="'YYYY-MM-DD HH:MM'", help="Local time of the plan (default: now)."
)
@click.option(
    "--presence",
    "presence",
    multiple=True,
    metavar="ID=STATE[ until HH:MM]",
    help="Presence of a person or service, e.g. jan=away or 'heimbuero=dnd until 14:00'"
    " (repeatable; default: everyone available).",
)
def explain(
    path: Path, to: str, caller: str | None, at: str | None, presence: tuple[str, ...]
) -> None:
    """Who rings for one call, in what order, how long, and why."""
    plans = load([path])
    plan = pick_plan(plans, to=to, tenant=None)
    zone = ZoneInfo(plan.timezone)
    now, note = parse_local_time(at, zone)
    call = CallInfo(called=to, caller=parse_caller(caller))
    snapshot = presence_snapshot(parse_presence(plan, presence, now), now)
    decision = decide(plan, call, snapshot, now)
    click.echo(render_decision(plan, call, now, decision, note, snapshot))


def format_number(number: str | None) -> str:
    if number is None:
        return "anonymous"
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def long_date(moment: datetime) -> str:
    weekday = weekview.WEEKDAYS[moment.weekday()]
    month = weekview.MONTHS[moment.month - 1]
    return f"{weekday} {moment.day} {month} {moment.year}, {moment:%H:%M}"


def target_label(plan: DialPlan, target: Target) -> str:
    owner = plan.person(target.owner)
    who = owner.name if owner is not None else target.owner
    return f"{who} {target.device} ({target.uri})"


def grouped_labels(plan: DialPlan, targets: Sequence[Target]) -> list[str]:
    """Like :func:`target_label`, but a person's name only once for consecutive devices."""
    labels: list[str] = []
    previous = None
    for target in targets:
        if target.owner == previous:
            labels.append(f"{target.device} ({target.uri})")
        else:
            labels.append(target_label(plan, target))
        previous = target.owner
    return labels


def step_line(plan: DialPlan, number: int, step: Step) -> list[str]:
    if step.parallel:
        labels = grouped_labels(plan, step.targets)
    else:
        labels = [target_label(plan, target) for target in step.targets]
    if len(labels) == 1:
        what = f"ring {labels[0]}"
    elif step.parallel:
        what = "ring at the same time " + ", ".join(labels[:-1]) + " and " + labels[-1]
    else:
        what = "ring " + ", then ".join(labels)
    lines = [f" {number}. {what} for {step.timeout:g} s"]
    extras = []
    if step.confirm:
        extras.append("the one who answers presses 1 to take the call")
    for failure, action in (
        ("busy", step.on_busy),
        ("no answer", step.on_no_answer),
        ("unreachable", step.on_unreachable),
    ):
        if action is OnFailure.FINAL:
            extras.append(f"if {failure}: stop ringing, go to the final action")
    lines.extend(f"    {extra}" for extra in extras)
    return lines


def final_line(decision: Decision) -> str:
    final = decision.final
    if final.kind is FinalKind.VOICEMAIL:
        text = "voicemail"
    elif final.kind is FinalKind.ANNOUNCEMENT:
        text = f"announcement {final.announcement!r}" if final.announcement else "announcement"
    else:
        text = f"reject with {final.sip_status} {final.reason}"
    return f" then: {text}" if decision.steps else f" at once: {text}"


def render_decision(
    plan: DialPlan,
    call: CallInfo,
    now: datetime,
    decision: Decision,
    note: str | None = None,
    presence: Mapping[str, PresenceState] | None = None,
) -> str:
    """The decision as a person reads it: who rings, how long, what then, and why."""
    local = now.astimezone(ZoneInfo(plan.timezone))
    lines = [
        f"{plan.name} — {long_date(local)} ({plan.timezone}), "
        f"caller {format_number(call.caller)}, called {format_number(call.called)}"
    ]
    if note:
        lines.append(f"(note: {note})")
    why_closed = plan.day_status(local.date()).why
    if why_closed:
        lines.append(f"This day is {why_closed}.")
    if presence:
        states = ", ".join(f"{person} {state.value}" for person, state in sorted(presence.items()))
        lines.append(f"Presence: {states} (everyone else available)")
    lines.append(f"Rule: {decision.rule if decision.rule is not None else weekview.NO_RULE}")
    for number, step in enumerate(decision.steps, start=1):
        lines.extend(step_line(plan, number, step))
    lines.append(final_line(decision))
    if decision.trace:
        lines.append("Why:")
        lines.extend(f"  - {line}" for line in decision.trace)
    return "\n".join(lines)
