"""What the switch derives from its settings and dial plans for the processes it runs:
the worker slots (:func:`worker_specs`) and the edge in front of them (:func:`edge_settings`).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rules import DialPlanSet
from switch import configfile
from switch.addresses import strip_port
from switch.call.admission import calls_per_worker
from switch.call.trunkident import IdentityPolicy, TrunkLine, line_to_json
from switch.control.pool import WorkerSpec
from switch.edge import EdgeSettings, WorkerDestination
from switch.edge.trunks import Trunk
from switch.errors import EdgeConfigError, EdgeError
from switch.supervisor.settings import Settings, endpoint

WORKER_PORTS: Sequence[int] = range(6000, 10000)
"""Where a worker behind our own edge gets its SIP port: below pjsua's RTP ports (10000 to
30000, switch/pjsua/epconfig.py) and outside the kernel's ephemeral range (32768-60999 on
Linux: :func:`ephemeral_ports`). A port from that range (what binding port 0 gives) was
free when the switch started, but any socket bound to port 0 since (an outgoing
connection, a DNS query, a phone's RTP) could take it while its worker restarted: the
worker then failed to bind and was restarted in a loop (300 calls held, issue 16)."""


def ephemeral_ports() -> range:
    """The kernel's range for sockets bound to port 0 (net.ipv4.ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def worker_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` free UDP ports from :data:`WORKER_PORTS`, in random order (several
    switches on one host pick apart), none in the ephemeral range."""
    ephemeral = ephemeral_ports()
    candidates = [port for port in WORKER_PORTS if port not in ephemeral]
    random.shuffle(candidates)
    found: list[int] = []
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise EdgeError(
        f"only {len(found)} of {count} worker ports free on {host} in"
        f" {min(WORKER_PORTS)}-{max(WORKER_PORTS)}"
    )


def worker_specs(settings: Settings) -> list[WorkerSpec]:
    """One spec per worker slot. Without the edge the only worker owns the SIP address;
    behind the edge each worker gets a free loopback port (:func:`worker_ports`), kept
    across restarts."""
    routes = dict(settings.routes)
    if settings.workers_listen is not None:
        base = endpoint(settings.workers_listen, 5070)
        addresses = [f"{base.host}:{base.port + i}" for i in range(settings.workers)]
    elif settings.edge_enabled:
        addresses = [f"127.0.0.1:{port}" for port in worker_ports(settings.workers)]
    else:
        addresses = [str(settings.sip_endpoint())]
    if settings.edge_enabled:
        # Registered phones ("sip:201@office") are found through the edge's registrar.
        domain = settings.edge.domain
        routes.setdefault(domain, str(settings.sip_endpoint()))
    trunk, extra = settings.trunk, ["--data-dir", str(settings.data_dir)]
    if settings.spare_leg and not settings.edge_enabled:
        # Without the edge nobody turns pjsua's own 486 (all call slots taken) into
        # 503 + Retry-After; ``spare_leg`` keeps one slot free for that (issue 14).
        extra.append("--spare-leg")
    extra += emergency_args(settings)
    if settings.media_bypass_enabled:
        extra.append("--media-bypass")  # issue 16: RTP end to end through rtpengine
    if settings.trunks.accounts and settings.edge_enabled:
        # Trunk legs go to the edge, which registers and authenticates (docs/trunks.md).
        trunk = str(settings.sip_endpoint())
        for account in settings.trunks.accounts:
            extra += ["--trunk-line", line_to_json(trunk_line(account))]
    return [
        WorkerSpec(
            name=f"w{i + 1}",
            sip=address,
            dialplans=settings.dialplans,
            routes=routes,
            trunk=trunk,
            grace_seconds=settings.grace_seconds,
            # Media services (issue 7): announcements and voicemail live under data_dir.
            extra_args=tuple(extra),
        )
        for i, address in enumerate(addresses)
    ]


def trunk_line(trunk: Trunk) -> TrunkLine:
    """What a worker needs of a trunk: its name, identity policy and tenants."""
    policy = IdentityPolicy(
        domain=trunk.identity_domain,
        header=trunk.identity_header,
        number_format=trunk.number_format,
        country=trunk.country,
        clip_no_screening=trunk.clip_no_screening,
        forwarding=trunk.forwarding,
        from_user=trunk.presented_from_user,
        p_early_media=trunk.p_early_media,
        mediasec=trunk.mediasec,
    )
    return TrunkLine(trunk.name, policy, frozenset(b.tenant for b in trunk.numbers))


def emergency_args(settings: Settings) -> tuple[str, ...]:
    """The worker's emergency reserve (settings ``emergency_reserve``), when one is kept."""
    if settings.emergency_reserve == 0:
        return ()
    return ("--emergency-reserve", str(settings.emergency_reserve))


def edge_settings(
    settings: Settings, plans: DialPlanSet, specs: Sequence[WorkerSpec]
) -> EdgeSettings:
    """The edge's settings: the operator's ``edge:`` keys, plus what the switch knows —
    the workers, the numbers the plans answer and the devices they may ring (toll-fraud
    guard: nothing else is reachable through the edge)."""
    numbers = sorted({number for plan in plans for number in plan.numbers})
    # Issue 19: the queue members' codes (*45..*48) are no public numbers: only an
    # authenticated phone reaches them (route[DIALLED]), never the trunk.
    targets = sorted(
        {
            edge_target(uri)
            for plan in plans
            for person in (*plan.people.values(), *plan.service.values())
            for uri in person.devices.values()
        }
    )
    derived: dict[str, Any] = {
        "listen": str(settings.sip_endpoint()),
        "workers": [
            WorkerDestination(
                uri=f"sip:{spec.sip}", maxload=calls_per_worker(settings.emergency_reserve)
            )
            for spec in specs
        ],
        "worker_tries": max(1, min(len(specs), 64)),  # a call may try every worker
        "public_numbers": numbers,
        "outbound_targets": targets,
        # Trunks are only what the operator names (edge.trunk_sources): a trusted source
        # skips the flood ban, so no address is trusted by default, not even 127.0.0.0/8
        # on a loopback edge (issue 14 item 5). The workers are trusted by the dispatcher.
        "trunk_sources": [],
        "run_dir": settings.data_dir / "edge",
        "db_path": settings.data_dir / "edge" / "edge.db",
        "trunks": settings.trunks,
    }
    if settings.trunks.accounts:
        # A trunk's own addresses are trunk sources (pike spares them; TRUNK_WHICH names them).
        sources = {n for a in settings.trunks.accounts for n in a.source_networks()}
        derived["trunk_sources"] = sorted({*derived["trunk_sources"], *sources})
    return configfile.validate(
        EdgeSettings,
        {**derived, **settings.edge_overrides()},
        EdgeConfigError,
        label="edge settings",
    )


def edge_target(uri: str) -> str:
    """A device URI as the edge's outbound list names it: a number, or user@host (no port,
    no parameters: the edge compares the request URI's user and host)."""
    bare = uri.split(";", 1)[0].removeprefix("sip:").removeprefix("sips:").removeprefix("tel:")
    user, at, host = bare.partition("@")
    return f"{user}@{strip_port(host)}" if at else bare
