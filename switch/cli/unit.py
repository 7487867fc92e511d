"""``rufweiche install-unit`` and ``rufweiche wait-ready``: a node installed like a service.

``install-unit`` writes a systemd unit (``rufweiche.service``, or ``rufweiche-NODE.service``
for one of several nodes on a host) and a ``sysusers.d`` entry for the ``rufweiche`` user:

* configuration under ``/etc/rufweiche`` (``ConfigurationDirectory=``), data under
  ``/var/lib/rufweiche`` (``StateDirectory=``, the only writable path: ``ReadWritePaths=``),
  logs to the journal (stdout/stderr, ``SyslogIdentifier=``);
* its own user, ``NoNewPrivileges``, ``ProtectSystem=strict``, ``PrivateTmp``, and of all
  capabilities only ``CAP_NET_BIND_SERVICE`` (to bind 5060); real-time scheduling up to
  priority 10 (``LimitRTPRIO=``) for rtpengine's media threads, nothing above;
* ``Restart=on-failure``; readiness: ``Type=simple`` plus ``ExecStartPost=rufweiche
  wait-ready``, which polls ``/healthz`` until it answers 200, or 503 with a worker up
  (the records database away: the node spools) — the unit is "started" only then, so
  ``systemctl start`` fails when the node never comes up. Type=notify would
  need sd_notify, which the switch does not speak.

The same files are shipped as ``dist/rufweiche.service`` and ``dist/rufweiche.sysusers``
(tests/switch/cli/test_unit.py checks that they are what this command writes, and runs
``systemd-analyze verify`` on the unit).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

import click

from switch.errors import UsageError

USER: Final = "rufweiche"
CONFIG_DIR: Final = Path("/etc/rufweiche")
DATA_DIR: Final = Path("/var/lib/rufweiche")


def default_command() -> str:
    """How systemd starts the ``rufweiche`` command of this installation."""
    return f"{sys.executable} -m switch"


def unit_text(
    *, command: str, node: str | None = None, http: str = "127.0.0.1:8080", grace_s: float = 10
) -> str:
    """The unit of one node (``node`` None: the only node on this host)."""
    name = f"-{node}" if node else ""
    settings = CONFIG_DIR / f"settings{name}.yaml"
    data = DATA_DIR / node if node else DATA_DIR
    state = f"rufweiche/{node}" if node else "rufweiche"
    return f"""\
# Written by `rufweiche install-unit`; see docs/operations.md ("Installed as a service").
[Unit]
Description=Rufweiche SIP switch{f" (node {node})" if node else ""}
Documentation=https://example.invalid/rufweiche/docs/operations.md
Wants=network-online.target
After=network-online.target postgresql.service mosquitto.service

[Service]
Type=simple
User={USER}
Group={USER}
ExecStart={command} run --settings {settings} --data-dir {data} --http {http}
ExecStartPost={command} wait-ready --url http://{http}/healthz --timeout 60
Restart=on-failure
RestartSec=2
TimeoutStartSec=90
TimeoutStopSec={int(grace_s) + 20}
KillSignal=SIGTERM
WorkingDirectory={data}
ConfigurationDirectory=rufweiche
StateDirectory={state}
ReadWritePaths={DATA_DIR}
Environment=PYTHONUNBUFFERED=1
StandardOutput=journal
StandardError=journal
SyslogIdentifier=rufweiche{name}
# Hardening: only the capability to bind 5060, nothing else writable.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
# rtpengine's media threads at SCHED_RR 10 (edge.media_relay.realtime): no more.
RestrictRealtime=no
LimitRTPRIO=10
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
UMask=0027
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


SYSUSERS: Final = f'u {USER} - "Rufweiche SIP switch" {DATA_DIR} /usr/sbin/nologin\n'


def started(status: int, body: bytes) -> bool:
    """Whether a /healthz answer means "started": 200 (ready), or 503 from a node that is
    live with a worker up but whose records database is away — it takes calls and spools
    (docs/operations.md, "Several nodes"), so systemd must not kill it for that."""
    if status == 200:
        return True
    try:
        health = json.loads(body)
    except ValueError:
        return False
    return bool(
        isinstance(health, dict) and health.get("live") and (health.get("workers_up") or 0) >= 1
    )


def wait_ready(url: str, timeout_s: float, interval_s: float = 0.5) -> bool:
    """Poll ``url`` until it answers "started" (:func:`started`); False at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if started(response.status, response.read()):
                    return True
        except urllib.error.HTTPError as exc:
            if started(exc.code, exc.read()):
                return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


@click.command("install-unit")
@click.option("--node", default=None, help="One of several nodes on this host: its name.")
@click.option("--http", default="127.0.0.1:8080", show_default=True, help="Its HTTP address.")
@click.option(
    "--command",
    "command",
    default=None,
    help="How systemd runs rufweiche.  [default: this Python with -m switch]",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("/"),
    show_default=True,
    help="Write below this directory (a package build, a test).",
)
@click.option("--print", "print_only", is_flag=True, help="Print the unit, write nothing.")
def install_unit(
    node: str | None, http: str, command: str | None, root: Path, print_only: bool
) -> None:
    """Write the systemd unit and the sysusers entry of this node."""
    if node is not None and not node.replace("-", "").isalnum():
        raise UsageError(f"--node {node!r}: letters, digits and - only")
    text = unit_text(command=command or default_command(), node=node, http=http)
    if print_only:
        click.echo(text, nl=False)
        return
    name = f"rufweiche-{node}.service" if node else "rufweiche.service"
    unit = root / "etc/systemd/system" / name
    users = root / "usr/lib/sysusers.d/rufweiche.conf"
    for path, content in ((unit, text), (users, SYSUSERS)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        click.echo(f"wrote {path}")
    click.echo(
        "next: systemd-sysusers; install -d -o rufweiche /etc/rufweiche; "
        f"systemctl daemon-reload; systemctl enable --now {shlex.quote(name)}"
    )


@click.command("wait-ready")
@click.option("--url", default="http://127.0.0.1:8080/healthz", show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=60.0, show_default=True)
def wait_ready_command(url: str, timeout_s: float) -> None:
    """Wait until the node's /healthz answers 200 (systemd's ExecStartPost)."""
    if not wait_ready(url, timeout_s):
        click.echo(f"rufweiche: {url} not ready after {timeout_s:g} s", err=True)
        raise click.exceptions.Exit(1)


__all__ = ["install_unit", "unit_text", "wait_ready_command"]
