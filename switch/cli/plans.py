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
from rules.forwarding import FORWARD_DEVICE
from switch import i18n, weekview
from switch.call.features import Refuse, check_forward
from switch.cli import tracetext
from switch.errors import SwitchError
from switch.i18n import _, ngettext
from switch.records.forwarding import FORWARDING_FILE, read_forwarding

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
    click.echo(ngettext("{count} dial plan ok", "{count} dial plans ok", count).format(count=count))


def summary_line(plan: DialPlan) -> str:
    parts = [
        f"{plan.tenant}: {plan.name}",
        counted(len(plan.numbers), "{n} number", "{n} numbers"),
        counted(len(plan.people), "{n} person", "{n} people"),
        counted(len(plan.rules), "{n} rule", "{n} rules"),
    ]
    if plan.extensions:
        parts.append(counted(len(plan.extensions), "{n} extension", "{n} extensions"))
    parts += [_("holidays {region}").format(region=holiday_region(plan)), plan.timezone]
    if plan.warnings:
        parts.append(counted(len(plan.warnings), "{n} warning", "{n} warnings"))
    return ", ".join(parts) + f" ({plan.source})"


def counted(count: int, one: str, many: str) -> str:
    """``"3 rules"``, in the current language (``"3 Regeln"``)."""
    return ngettext(one, many, count).format(n=count)


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def holiday_region(plan: DialPlan) -> str:
    if plan.holiday_country is None:
        return _("none")
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
@click.option(
    "--forward",
    "forward",
    multiple=True,
    metavar="ID=NUMBER",
    help="Call forwarding of a person, e.g. jan=01701234567 (repeatable; as *21*<number>#"
    " sets it).",
)
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Read the forwardings in force from the switch's data directory.",
)
def explain(
    path: Path,
    to: str,
    caller: str | None,
    at: str | None,
    presence: tuple[str, ...],
    forward: tuple[str, ...] = (),
    data_dir: Path | None = None,
) -> None:
    """Who rings for one call, in what order, how long, and why."""
    plans = load([path])
    plan = pick_plan(plans, to=to, tenant=None)
    i18n.set_language(plan_language(plan))
    zone = ZoneInfo(plan.timezone)
    now, note = parse_local_time(at, zone)
    call = CallInfo(called=to, caller=parse_caller(caller))
    snapshot = presence_snapshot(parse_presence(plan, presence, now), now)
    forwarding = parse_forwarding(plan, forward, data_dir)
    decision = decide(plan, call, snapshot, now, forwarding)
    click.echo(render_decision(plan, call, now, decision, note, snapshot, forwarding))


def parse_forwarding(plan: DialPlan, args: Sequence[str], data_dir: Path | None) -> dict[str, str]:
    """The forwardings stored in ``data_dir`` (if given), then those of ``--forward``; each
    number checked as the switch checks it (a premium number is refused)."""
    found = (
        dict(read_forwarding(data_dir / FORWARDING_FILE).get(plan.tenant, {})) if data_dir else {}
    )
    for arg in args:
        person, sep, number = arg.partition("=")
        person, number = person.strip(), number.strip().replace(" ", "")
        if not sep or not person or not number:
            raise click.BadParameter(f"{arg!r}: expected ID=NUMBER", param_hint="--forward")
        if person not in plan.people:
            raise click.BadParameter(
                f"{person!r}: not a person of {plan.tenant}", param_hint="--forward"
            )
        checked = check_forward(plan, person, number)
        if isinstance(checked, Refuse):
            raise click.BadParameter(f"{number!r}: {checked.reason}", param_hint="--forward")
        found[person] = checked
    return found


def format_number(number: str | None) -> str:
    if number is None:
        return _("anonymous")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def plan_language(plan: DialPlan) -> i18n.Language:
    """``--lang`` (or RUFWEICHE_LANG) first, then the plan's ``language:``, then German."""
    asked = click.get_current_context().find_root().meta.get(LANG_KEY)
    return i18n.choose(asked, plan.spec.language)


LANG_KEY = "rufweiche.lang"


def long_date(moment: datetime) -> str:
    if i18n.current() != "en":
        return i18n.format_long(moment)
    weekday = weekview.WEEKDAYS[moment.weekday()]
    month = weekview.MONTHS[moment.month - 1]
    return f"{weekday} {moment.day} {month} {moment.year}, {moment:%H:%M}"


def target_label(plan: DialPlan, target: Target) -> str:
    owner = plan.person(target.owner)
    who = owner.name if owner is not None else target.owner
    device = _("forwarded") if target.device == FORWARD_DEVICE else target.device
    return f"{who} {device} ({target.uri})"


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
    if step.queue is not None:  # issue 19: the queue's settings say whom it rings
        return [
            f" {number}. wait in the queue {step.queue!r} (until a member answers or it gives up)"
        ]
    if step.parallel:
        labels = grouped_labels(plan, step.targets)
    else:
        labels = [target_label(plan, target) for target in step.targets]
    if len(labels) == 1:
        what = _("ring {who}").format(who=labels[0])
    elif step.parallel:
        what = _("ring at the same time {some} and {last}").format(
            some=", ".join(labels[:-1]), last=labels[-1]
        )
    else:
        what = _("ring {who}").format(who=_(", then ").join(labels))
    lines = [
        " "
        + _("{number}. {what} for {seconds} s").format(
            number=number, what=what, seconds=f"{step.timeout:g}"
        )
    ]
    extras = []
    if step.confirm:
        extras.append(_("the one who answers presses 1 to take the call"))
    for failure, action in (
        (_("busy"), step.on_busy),
        (_("no answer"), step.on_no_answer),
        (_("unreachable"), step.on_unreachable),
    ):
        if action is OnFailure.FINAL:
            extras.append(
                _("if {failure}: stop ringing, go to the final action").format(failure=failure)
            )
    lines.extend(f"    {extra}" for extra in extras)
    return lines


def final_line(decision: Decision) -> str:
    final = decision.final
    if final.kind is FinalKind.VOICEMAIL:
        text = _("voicemail")
    elif final.kind is FinalKind.ANNOUNCEMENT:
        text = (
            _("announcement {text}").format(text=repr(final.announcement))
            if final.announcement
            else _("announcement")
        )
    else:
        text = _("reject with {status} {reason}").format(
            status=final.sip_status, reason=final.reason
        )
    return " " + (_("then: {what}") if decision.steps else _("at once: {what}")).format(what=text)


def render_decision(
    plan: DialPlan,
    call: CallInfo,
    now: datetime,
    decision: Decision,
    note: str | None = None,
    presence: Mapping[str, PresenceState] | None = None,
    forwarding: Mapping[str, str] | None = None,
) -> str:
    """The decision as a person reads it: who rings, how long, what then, and why."""
    local = now.astimezone(ZoneInfo(plan.timezone))
    lines = [
        _("{plan} — {when} ({zone}), caller {caller}, called {called}").format(
            plan=plan.name,
            when=long_date(local),
            zone=plan.timezone,
            caller=format_number(call.caller),
            called=format_number(call.called),
        )
    ]
    if note:
        lines.append(_("(note: {note})").format(note=note))
    why_closed = plan.day_status(local.date()).why
    if why_closed:
        lines.append(_("This day is {why}.").format(why=day_reason(plan, local)))
    if presence:
        states = ", ".join(
            f"{person} {_(state.value)}" for person, state in sorted(presence.items())
        )
        lines.append(_("Presence: {states} (everyone else available)").format(states=states))
    if forwarding:
        forwards = ", ".join(
            f"{person} → {format_number(number)}" for person, number in sorted(forwarding.items())
        )
        lines.append(_("Forwarding: {forwards}").format(forwards=forwards))
    rule = decision.rule if decision.rule is not None else _(weekview.NO_RULE)
    lines.append(_("Rule: {rule}").format(rule=rule))
    for number, step in enumerate(decision.steps, start=1):
        lines.extend(step_line(plan, number, step))
    lines.append(final_line(decision))
    if decision.trace:
        lines.append(_("Why:"))
        lines.extend(f"  - {tracetext.translate(line, i18n.current())}" for line in decision.trace)
    return "\n".join(lines)


def day_reason(plan: DialPlan, local: datetime) -> str:
    """Why the day is closed, in the current language (holiday names as ``holidays`` gives
    them in German: "Fronleichnam")."""
    status = plan.day_status(local.date())
    if i18n.current() == "en":
        return status.why
    reasons: list[str] = []
    if status.holiday is not None:
        reasons.append(_("a public holiday ({name})").format(name=status.holiday))
    if status.closed_day:
        reasons.append(_("a closed day"))
    if status.vacation is not None:
        reasons.append(_("in the vacation {name}").format(name=repr(status.vacation)))
    return _(" and ").join(reasons)
