"""``python -m switch.edge`` (render and run the edge alone) and ``python -m
switch.edge.credentials`` (a phone's HA1): the click side of switch/edge/.

Errors are printed as they are for ``rufweiche``: one line ``edge: <message>`` per problem
(``secrets: …`` for the secrets file), Kamailio's own output below it, exit status 1.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Literal

import click

from switch.edge.config import write_files
from switch.edge.credentials import add_user
from switch.edge.process import Edge
from switch.edge.settings import EdgeSettings, load_edge_settings
from switch.errors import CredentialsError, EdgeConfigError, EdgeError, EdgeStartError


@click.command()
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="YAML file of edge settings (docs/edge.md).",
)
@click.option(
    "--edge",
    "mode",
    type=click.Choice(["managed", "external"]),
    default="managed",
    show_default=True,
    help="managed: run Kamailio here; external: only render the files for another runner.",
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="run_dir override.")
def main(settings_path: Path, mode: Literal["managed", "external"], out: Path | None) -> None:
    """Render the edge's Kamailio configuration and (managed) run it until Ctrl-C."""
    try:
        settings = load_edge_settings(settings_path, {"run_dir": out})
        if mode == "external":
            paths = write_files(settings)
            click.echo(f"wrote {paths.config}, {paths.dispatcher_list}, {paths.db}")
            click.echo(
                f"run: kamailio -DD -E -f {paths.config} -m {settings.shm_mb}"
                f" -M {settings.pkg_mb} -Y {paths.run_dir}"
            )
            return
        asyncio.run(_run_forever(settings))
    except EdgeError as exc:
        click.echo(f"edge: {exc}", err=True)
        output = (
            exc.output
            if isinstance(exc, EdgeConfigError)
            else exc.log
            if isinstance(exc, EdgeStartError)
            else ""
        )
        if output:
            click.echo(output, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


async def _run_forever(settings: EdgeSettings) -> None:
    async with Edge(settings) as edge:
        click.echo(f"edge: kamailio pid {edge.pid} on {settings.listen}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("user")
@click.option("--realm", help="The edge domain (EdgeSettings.domain); needed for a new file.")
@click.password_option(help="Asked for when not given; only its HA1 is stored.")
def credentials_main(path: Path, user: str, realm: str | None, password: str) -> None:
    """Add USER (or set a new password) in the secrets file PATH."""
    try:
        add_user(path, user, password, realm=realm)
    except CredentialsError as exc:
        click.echo(f"secrets: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{path}: {user} saved (HA1 only); restart or re-render the edge to load it")
