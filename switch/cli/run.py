"""``rufweiche run``: the options of the switch, handed to :func:`switch.supervisor.app.main`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from switch.errors import SwitchError


# Defaults live in switch/supervisor/settings.py: an option the user did not give is passed as None
# (or empty), so that a --settings file is not overridden by a command-line default.
@click.command()
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
    "--edge-mode",
    type=click.Choice(["auto", "managed", "external", "off"]),
    help="The Kamailio edge: always in front (auto, managed), files only (external), or a"
    " bare worker on loopback for tests and benchmarks (off).  [default: auto]",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="[default: info]",
)
def run(**options: Any) -> None:
    """Start the switch: supervisor, SIP workers, HTTP and MQTT."""
    try:
        supervisor = importlib.import_module("switch.supervisor.app")
    except ImportError as exc:
        raise SwitchError(
            f"the switch cannot start: switch.supervisor.app is not available ({exc})"
        ) from None
    code = supervisor.main(**options)
    if isinstance(code, int) and code:
        raise click.exceptions.Exit(code)
