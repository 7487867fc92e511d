"""``rufweiche``: the command line.

    rufweiche check [PATH...]                 validate dial plans
    rufweiche explain PATH --to NUMBER ...    who rings for one call, and why
    rufweiche week PATH ...                   which rule answers at each hour of a week
    rufweiche run ...                         start the switch
    rufweiche users add|passwd|remove|list|token|mqtt-device|mqtt-files
                                              who may log in (docs/security.md)

Users never see a traceback: an expected error is a one-line message (one line per
problem for a dial plan) and exit status 1 (2 for a usage error, from click); anything
unexpected is reported as an internal error with exit status 70 (EX_SOFTWARE), and its
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click
import phonenumbers

from rules import (
    CallInfo,
    DialPlan,
    DialPlanError,
    DialPlanSet,
    PresenceState,
    decide,
    load_dialplans,
)
from rules.decision import Decision, FinalKind, OnFailure, Step, Target
from switch.cli import weekview

EX_SOFTWARE = 70  # sysexits.h: internal software error
DEFAULT_DIALPLANS = Path("dialplans")
ANONYMOUS = "anonymous"


class CliError(click.ClickException):
    """An expected failure: one clear message, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"rufweiche: {self.format_message()}", err=True)


class _Main(click.Group):
    """Turns unexpected exceptions into one line and exit status 70."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(
                f"rufweiche: internal error: {type(exc).__name__}: {exc}, please report "
                "(run with --debug to see where)",
                err=True,
            )
            ctx.exit(EX_SOFTWARE)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def main(debug: bool) -> None:
    """Rufweiche: a SIP call-routing switch for virtual offices."""


# -- loading -----------------------------------------------------------------------------------


def dialplan_files(paths: Iterable[Path]) -> list[Path]:
    """Files named on the command line, directories expanded to their *.yaml / *.yml."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise CliError(f"{path}: no dial plans (*.yaml) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"{path}: no such file or directory")
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
    raise CliError(f"{count} problem{'s' if count != 1 else ''} found, nothing loaded")


def pick_plan(plans: DialPlanSet, *, to: str | None, tenant: str | None) -> DialPlan:
    if tenant is not None:
        if tenant not in plans.plans:
            raise CliError(
                f"tenant {tenant!r} not found{did_you_mean(tenant, plans.plans)}; "
                f"tenants: {listing(plans.plans)}"
            )
        return plans.plans[tenant]
    if to is not None:
        plan = plans.for_number(to)
        if plan is None:
            numbers = [number for plan in plans for number in plan.numbers]
            raise CliError(
                f"number {to!r} belongs to no dial plan{did_you_mean(to, numbers)}; "
                f"numbers: {listing(numbers, sort=False)}"
            )
        return plan
    if len(plans) == 1:
        return next(iter(plans))
    raise CliError(
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


def parse_presence(plan: DialPlan, items: Sequence[str]) -> dict[str, PresenceState]:
    """``("jan=away", ...)`` -> snapshot, with the valid names in every error."""
    states = ", ".join(state.value for state in PresenceState)
    snapshot: dict[str, PresenceState] = {}
    for item in items:
        person, sep, state = item.partition("=")
        person, state = person.strip(), state.strip().lower()
        if not sep or not person or not state:
            raise CliError(f"--presence {item!r}: expected PERSON=STATE, e.g. jan=away")
        if person not in plan.people:
            raise CliError(
                f"--presence {item!r}: no person {person!r} in {plan.name}"
                f"{did_you_mean(person, plan.people)}; people: {listing(plan.people)}"
            )
        try:
            snapshot[person] = PresenceState(state)
        except ValueError:
            raise CliError(
                f"--presence {item!r}: unknown state {state!r}; states: {states}"
            ) from None
    return snapshot


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
        raise CliError(f"--at {raw!r}: expected a local time like '2027-05-27 10:00'") from None
    if wall.tzinfo is not None:
        return wall.astimezone(zone), None
    instant = weekview.local_instant(wall.date(), wall.time(), zone)
    if instant is None:
        shifted = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
        return shifted, f"{wall:%H:%M} does not exist that day (clocks go forward): {shifted:%H:%M}"
    if instant.replace(fold=1).utcoffset() != instant.utcoffset():
        return instant, f"{wall:%H:%M} happens twice that day (clocks go back): the first one"
    return instant, None


# -- check -------------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate dial plans (default: dialplans/). Prints every problem as path:line:col."""
    if not paths and not DEFAULT_DIALPLANS.is_dir():
        raise CliError(f"no {DEFAULT_DIALPLANS}/ directory here: name the dial plans to check")
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


@main.command()
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
    metavar="PERSON=STATE",
    help="Presence of a person, e.g. jan=away (repeatable; default: everyone available).",
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
    snapshot = parse_presence(plan, presence)
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


# -- week --------------------------------------------------------------------------------------


@main.command()
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
    "--presence", multiple=True, metavar="PERSON=STATE", help="e.g. jan=away (repeatable)."
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
    except weekview.WeekViewError as exc:
        raise CliError(f"--week: {exc}") from None
    call = CallInfo(called=to or plan.numbers[0], caller=parse_caller(caller))
    grid = weekview.week_grid(
        plan,
        monday,
        call,
        parse_presence(plan, presence),
        slot_minutes=int(slot_minutes),
    )

    def style(text: str, rule: str | None) -> str:
        return click.style(text, fg=weekview.terminal_colour(grid, rule), bold=rule is not None)

    click.echo(weekview.render_text(grid, style=style), nl=False)
    if svg is not None:
        try:
            svg.write_text(weekview.render_svg(grid), encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{svg}: cannot write: {exc.strerror}") from None
        click.echo(f"wrote {svg}")


# -- run ---------------------------------------------------------------------------------------


# Defaults live in switch/supervisor/settings.py: an option the user did not give is passed as None
# (or empty), so that a --settings file is not overridden by a command-line default.
@main.command()
@click.option(
    "--dialplans",
    "dialplans",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Dial plan file or directory, repeatable.  [default: dialplans/]",
)
@click.option("--sip", metavar="HOST:PORT", help="SIP address.  [default: 127.0.0.1:5060]")
@click.option("--http", metavar="HOST:PORT", help="HTTP address.  [default: 127.0.0.1:8080]")
@click.option("--settings", type=click.Path(path_type=Path), help="Settings file (YAML).")
@click.option("--workers", type=click.IntRange(min=1), help="SIP worker processes.  [default: 1]")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Call records etc.  [default: var/]"
)
@click.option("--mqtt", metavar="HOST:PORT", help="MQTT broker.  [default: 127.0.0.1:1883]")
@click.option("--no-mqtt", is_flag=True, help="Run without an MQTT broker.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="[default: info]",
)
def run(**options: Any) -> None:
    """Start the switch: supervisor, SIP workers, HTTP and MQTT."""
    try:
        supervisor = importlib.import_module("switch.supervisor.supervisor")
    except ImportError as exc:
        raise CliError(
            f"the switch cannot start: switch.supervisor.supervisor is not available ({exc})"
        ) from None
    code = supervisor.main(**options)
    if isinstance(code, int) and code:
        raise click.exceptions.Exit(code)


# -- users (docs/security.md) -----------------------------------------------------------------
# Who may use the HTTP API, the dashboard and MQTT devices. Everything goes through
# switch.access.auth; this block only parses options and prints.


def _users_file(ctx: click.Context) -> Any:
    return ctx.find_object(dict)["users_file"]  # type: ignore[index]


def _edit_users(ctx: click.Context, change: Any) -> Any:
    """Load the users file, apply ``change(users) -> users | (users, ...)``, save it."""
    from switch.access import auth

    users_file = _users_file(ctx)
    try:
        result = change(users_file.load())
        new = result[0] if isinstance(result, tuple) else result
        users_file.save(new)
    except auth.AuthError as exc:
        raise CliError(str(exc)) from None
    return result


def _read_users(ctx: click.Context) -> Any:
    from switch.access import auth

    try:
        return _users_file(ctx).load()
    except auth.AuthError as exc:
        raise CliError(str(exc)) from None


def _new_password(prompt: str) -> str:
    from switch.access import auth

    password = str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))
    try:
        return auth.Passwords().hash(password)
    except auth.UserError as exc:
        raise CliError(str(exc)) from None


@main.group()
@click.option(
    "--users-file",
    type=click.Path(path_type=Path),
    default=Path("var/users.yaml"),
    show_default=True,
    envvar="RUFWEICHE_USERS_FILE",
    help="The users file (next to the other secrets, mode 0600).",
)
@click.pass_context
def users(ctx: click.Context, users_file: Path) -> None:
    """People who may log in, their API tokens, and MQTT device logins."""
    from switch.access.auth import UsersFile

    ctx.ensure_object(dict)["users_file"] = UsersFile(users_file)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["owner", "assistant", "ops"]), required=True)
@click.option("--tenant", "tenants", multiple=True, help="A tenant of theirs, repeatable.")
@click.option("--person", help="Their person id in the dial plan (own presence).")
@click.option("--grant", "grants", multiple=True, type=click.Choice(["recordings"]))
@click.pass_context
def users_add(
    ctx: click.Context,
    name: str,
    role: str,
    tenants: tuple[str, ...],
    person: str | None,
    grants: tuple[str, ...],
) -> None:
    """Add a user; the password is asked for, TOTP is set up at the first login."""
    from switch.access import auth

    password_hash = _new_password(f"password for {name}")
    _edit_users(
        ctx,
        lambda u: auth.add_user(
            u,
            name,
            role=auth.Role(role),
            password_hash=password_hash,
            tenants=tenants,
            person=person,
            grants=grants,
        ),
    )
    click.echo(f"added {role} {name!r}; two-factor setup follows at the first login")


@users.command("passwd")
@click.argument("name")
@click.option("--reset-totp", is_flag=True, help="Also forget the TOTP secret (lost phone).")
@click.pass_context
def users_passwd(ctx: click.Context, name: str, reset_totp: bool) -> None:
    """Set a new password (ends the user's sessions)."""
    from switch.access import auth

    try:
        auth.get_user(_read_users(ctx), name)  # fail before asking for a password
    except auth.UserError as exc:
        raise CliError(str(exc)) from None
    password_hash = _new_password(f"new password for {name}")
    _edit_users(ctx, lambda u: auth.set_password(u, name, password_hash, reset_totp=reset_totp))
    click.echo(f"password of {name!r} changed" + ("; TOTP reset" if reset_totp else ""))


@users.command("remove")
@click.argument("name")
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove a user and all their tokens (effective at once)."""
    from switch.access import auth

    _edit_users(ctx, lambda u: auth.remove_user(u, name))
    click.echo(f"removed {name!r} and their tokens")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Users, their role, tenants and whether TOTP is set up."""
    found = _read_users(ctx).users
    if not found:
        click.echo("no users (the HTTP side is open, on loopback only)")
    for name, user in sorted(found.items()):
        tenants = ",".join(user.tenants) or "all"
        totp = "totp" if user.totp else "totp pending"
        person = f" person={user.person}" if user.person else ""
        grants = f" grants={','.join(user.grants)}" if user.grants else ""
        click.echo(f"{name}  {user.role.value}  tenants={tenants}{person}{grants}  {totp}")


@users.group("token")
def users_token() -> None:
    """API tokens (Authorization: Bearer) for scripts and home automation."""


@users_token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What it is for, e.g. 'home assistant'.")
@click.option("--tenant", "tenants", multiple=True, help="Limit to these tenants of theirs.")
@click.pass_context
def token_create(ctx: click.Context, name: str, label: str, tenants: tuple[str, ...]) -> None:
    """Create a token for NAME's role and tenants; it is shown only this once."""
    import time

    from switch.access import auth

    _users, token, entry = _edit_users(
        ctx, lambda u: auth.add_token(u, name, label=label, tenants=tenants, now=time.time())
    )
    click.echo(f"token {entry.id} for {name!r} (shown only now, store it safely):")
    click.echo(token)


@users_token.command("revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id (effective with the next request)."""
    from switch.access import auth

    _edit_users(ctx, lambda u: auth.revoke_token(u, token_id))
    click.echo(f"token {token_id} revoked")


@users_token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    for entry in _read_users(ctx).tokens:
        tenants = ",".join(entry.tenants) or "all"
        click.echo(f"{entry.id}  {entry.user}  tenants={tenants}  {entry.created}  {entry.label}")


@users.command("mqtt-device")
@click.argument("tenant")
@click.argument("person")
@click.pass_context
def users_mqtt_device(ctx: click.Context, tenant: str, person: str) -> None:
    """Create (or rotate) the MQTT login of PERSON's device; the password is shown once."""
    import secrets

    from switch.access import auth

    password = secrets.token_urlsafe(18)
    _users, name = _edit_users(ctx, lambda u: auth.set_mqtt_device(u, tenant, person, password))
    click.echo(f"MQTT user {name}  password {password}")
    click.echo("then run `rufweiche users mqtt-files` and reload Mosquitto (SIGHUP)")


@users.command("mqtt-files")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory.")
@click.option("--switch-user", default="rufweiche", show_default=True)
@click.option(
    "--switch-password-file",
    type=click.Path(path_type=Path),
    help="The switch's MQTT password (settings mqtt.password_file); made up when missing."
    "  [default: OUT/switch.password]",
)
@click.option("--prefix", default="rufweiche/v1", show_default=True, help="Topic prefix.")
@click.pass_context
def users_mqtt_files(
    ctx: click.Context,
    out: Path,
    switch_user: str,
    switch_password_file: Path | None,
    prefix: str,
) -> None:
    """Write Mosquitto's password_file and acl_file (docs/mqtt.md, "Access control")."""
    import os
    import secrets

    from switch.access import auth

    secret_path = switch_password_file or out / "switch.password"
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not secret_path.exists():
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        password = secret_path.read_text().strip()
        passwd, acl = auth.mosquitto_files(
            _read_users(ctx),
            switch_user=switch_user,
            switch_password=password,
            prefix=prefix,
        )
        for name, text in (("passwd", passwd), ("acl", acl)):
            fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
    except OSError as exc:
        raise CliError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    except auth.AuthError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"wrote {out / 'passwd'} and {out / 'acl'}; switch password in {secret_path}")


# -- privacy (GDPR export/delete, retention) and report: switch/cli/privacy.py, report.py --

from switch.cli.privacy import privacy as privacy_group  # noqa: E402  (imports CliError)
from switch.cli.report import report as report_command  # noqa: E402

main.add_command(privacy_group)
main.add_command(report_command)
