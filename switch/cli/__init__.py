"""``rufweiche``: the command line — the only package that imports click.

    rufweiche [--lang de|en] ...            German by default (switch/i18n.py)
    rufweiche check [PATH...]                 validate dial plans              plans.py
    rufweiche explain PATH --to NUMBER ...    who rings for one call, and why  plans.py
    rufweiche week PATH ...                   which rule answers at each hour  week.py
    rufweiche run ...                         start the switch                 run.py
    rufweiche users add|passwd|remove|list|token|mqtt-device|mqtt-files
                                              who may log in (docs/security.md) users.py
    rufweiche report / privacy                billing report, GDPR (switch/records/)
                                              (their shared options: options.py)
    rufweiche contacts import CSV --tenant T  a business's address book     contacts.py
    rufweiche install-unit / wait-ready       the systemd unit of a node        unit.py
    python -m switch.edge                     the edge alone                   edge.py

Users never see a traceback: every :class:`switch.errors.SwitchError` is caught here, once,
and printed as ``rufweiche: <message>`` (one line per problem), exit status 1 (2 for a
:class:`~switch.errors.UsageError` and for click's own usage errors); a dial plan's
problems are printed one per line first. Anything unexpected is reported as an internal
error with exit status 70 (EX_SOFTWARE), its traceback shown only with ``--debug``.

May import every switch package (it starts the supervisor) and rules/.
"""

from __future__ import annotations

from typing import Any

import click

from switch import i18n
from switch.cli import contacts, plans, privacy, report, run, unit, users, week
from switch.errors import SwitchError, UsageError

EX_SOFTWARE = 70  # sysexits.h: internal software error
USAGE = 2  # click's exit status for a usage error


class _Main(click.Group):
    """Turns a SwitchError into one line and exit 1 (2 for UsageError), and anything
    unexpected into one line and exit 70."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SwitchError as exc:
            click.echo(f"rufweiche: {exc}", err=True)
            ctx.exit(USAGE if isinstance(exc, UsageError) else 1)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(
                f"rufweiche: internal error: {type(exc).__name__}: {exc}, please report "
                "(run with --debug to see where)",
                err=True,
            )
            ctx.exit(EX_SOFTWARE)


def _language(value: str | None) -> str | None:
    try:
        return i18n.language(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
@click.option(
    "--lang",
    envvar=i18n.ENV,
    metavar="de|en",
    callback=lambda _ctx, _param, value: _language(value),
    help="Language of the output: de (the default) or en; else the plan's language:.",
)
@click.pass_context
def main(ctx: click.Context, debug: bool, lang: str | None) -> None:
    """Rufweiche: a SIP call-routing switch for virtual offices."""
    ctx.meta[plans.LANG_KEY] = lang
    i18n.set_language(i18n.choose(lang))


main.add_command(plans.check)
main.add_command(plans.explain)
main.add_command(week.week)
main.add_command(run.run)
main.add_command(users.users)
main.add_command(privacy.privacy)
main.add_command(report.report)
main.add_command(contacts.contacts)
main.add_command(unit.install_unit)
main.add_command(unit.wait_ready_command)
