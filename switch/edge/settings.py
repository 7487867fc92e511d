"""The edge's settings: :class:`EdgeSettings` (every key of docs/edge.md) and how they are read.

``load_edge_settings`` reads an ``edge.yaml`` through :mod:`switch.configfile`, so a typo reads
``edge.yaml:12:3: listn: unknown key, did you mean 'listen'?``; :func:`settings_for_pool` makes
them for a worker pool from the operator's keys. Pure: no I/O besides reading the file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from switch import configfile
from switch.addresses import parse_host_port
from switch.edge.rtpengine import MediaRelaySettings
from switch.edge.trunks import TrunksSettings, trunk_sources
from switch.errors import EdgeConfigError

DEFAULT_SCANNERS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "sip-scan",
    "sipsak",
    "sundayddr",
    "iwar",
    "smap",
    "pplsip",
)

LOCATION_FLUSH_S: Final = 5
"""One node (usrloc ``db_mode 2``, write-back): how often, in seconds, Kamailio writes the
registrations from memory to the ``location`` table (usrloc ``timer_interval``), so a
binding is on disk at most this long after its REGISTER (docs/edge.md "Registrar")."""

_NUMBER = re.compile(r"^[A-Za-z0-9+*#._-]{1,64}$")
_USER_AT_HOST = re.compile(r"^[A-Za-z0-9+*#._-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_SCANNER = re.compile(r"^[a-z0-9 ._/-]{2,64}$")
_WORKER_URI = re.compile(r"^sip:[A-Za-z0-9.-]+:[0-9]{1,5}(;transport=(udp|tcp))?$")
_SHARED_DB = re.compile(
    r"^postgres://[A-Za-z0-9_.-]{1,63}@[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/[A-Za-z0-9_]{1,63}$"
)
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def _host_port(value: str) -> tuple[str, int]:
    """An edge address: host:port (switch.addresses) whose host is an IP and port 1..65535."""
    host, port = parse_host_port(value)
    if port == 0:
        raise ValueError(f"address {value!r} is not host:port with a port from 1 to 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # Kamailio resolves names at start; an IP keeps the edge free of DNS (dns=no).
        raise ValueError(f"address {value!r}: the host must be an IP address") from None
    return host, port


class WorkerDestination(BaseModel):
    """One worker as the dispatcher sees it: where it listens and how many calls it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    uri: str  # sip:HOST:PORT[;transport=udp|tcp]
    # Simultaneous calls the worker holds; a pjsua2 worker holds 2 bridged calls (DESIGN.md).
    maxload: Annotated[int, Field(ge=1, le=10_000)] = 2

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not _WORKER_URI.match(value):
            raise ValueError(f"worker uri {value!r} is not sip:IP:PORT[;transport=udp|tcp]")
        _host_port(value.removeprefix("sip:").split(";")[0])
        return value


class EdgeSettings(BaseModel):
    """Everything the edge needs. Paths are used as given (relative to the working dir)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listen: str = "127.0.0.1:5060"  # UDP and TCP; a concrete IP, not 0.0.0.0
    advertise: str | None = None  # public host:port put in Record-Route/Via behind NAT
    domain: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]{1,253}$")] = "office"  # realm, alias
    tls_listen: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    workers: tuple[WorkerDestination, ...] = ()
    trunk_sources: tuple[str, ...] = ()  # IPs or CIDRs whose INVITEs are trunk calls
    public_numbers: tuple[str, ...] = ()  # plan numbers callable from trunks
    outbound_targets: tuple[str, ...] = ()  # numbers/users or user@host the workers may call
    worker_rate: Annotated[int, Field(ge=1, le=10_000)] = 10  # new calls/s per worker
    worker_tries: Annotated[int, Field(ge=1, le=64)] = 3  # workers tried per call (failover)
    worker_timeout_ms: Annotated[int, Field(ge=100, le=60_000)] = 2000  # no 100 Trying → next
    ping_interval: Annotated[int, Field(ge=1, le=3600)] = 2  # OPTIONS to each worker, seconds
    pike_density: Annotated[int, Field(ge=1, le=100_000)] = 30  # requests per window per IP
    pike_window: Annotated[int, Field(ge=1, le=60)] = 2  # seconds
    ban_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300
    # The Retry-After (RFC 3261 §20.33) of every 503 the edge sends (full, paced, limited).
    retry_after: Annotated[int, Field(ge=1, le=3600)] = 5
    # Answered calls one source may leave unacknowledged at a time (RFC 3261 timer H holds
    # each for up to 32 s on a worker); the next INVITE from there gets 503 (issue 14).
    # None: half the calls the workers hold together (at least 1).
    unacked_per_source: Annotated[int, Field(ge=1, le=10_000)] | None = None
    scanner_user_agents: tuple[str, ...] = DEFAULT_SCANNERS  # lower-case substrings
    db_path: Path = Path("var/edge/edge.db")
    # Registrations (usrloc) and subscribers (auth_db) in a PostgreSQL that several edges
    # share, so that a phone registered through one node is reached through any
    # (switch/edge/shared_db.py, docs/operations.md "Several nodes"). No password here:
    # the Kamailio process reads it from PGPASSFILE / ~/.pgpass (libpq).
    shared_db_url: str | None = None  # postgres://USER@HOST:PORT/DATABASE
    # Whether this node's edge sends the trunks' REGISTERs (uac reg_active). A provider
    # takes one registration per account: with shared_db_url, set it true on one node
    # only (the trunk rows are shared; docs/operations.md "Several nodes", failover).
    register_trunks: bool = True
    secrets_file: Path | None = None
    run_dir: Path = Path("var/edge")
    shm_mb: Annotated[int, Field(ge=64, le=65_536)] = 512  # DESIGN.md: 64 MB fails ~300 calls/s
    pkg_mb: Annotated[int, Field(ge=8, le=1024)] = 16
    children: Annotated[int, Field(ge=1, le=64)] = 4
    log_level: Annotated[int, Field(ge=-5, le=3)] = 1  # Kamailio debug=: 1 notice, 2 info
    # Phones behind NAT (issue 15, docs/edge.md "Phones behind NAT"): nathelper fixes their
    # contacts and pings NATed ones with OPTIONS every natping_interval seconds, below the
    # 30 s a home router keeps a UDP binding.
    nat: bool = True
    natping_interval: Annotated[int, Field(ge=5, le=600)] = 20
    media_relay: MediaRelaySettings = MediaRelaySettings()
    # TLS client profile towards providers: their CA (Telekom: T-TeleSec GlobalRoot Class 2).
    tls_ca_file: Path | None = None
    tls_verify_server: bool = True
    # Phones (subscriber users) whose calls must be TLS + SRTP; anything else gets 488.
    require_encryption: tuple[str, ...] = ()
    trunks: TrunksSettings = TrunksSettings()  # SIP trunk accounts (docs/trunks.md)

    @field_validator("listen", "tls_listen", "advertise")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            _host_port(value)
        return value

    @field_validator("listen")
    @classmethod
    def _concrete(cls, value: str) -> str:
        # With a wildcard listen Kamailio would write 0.0.0.0 into Record-Route.
        if ipaddress.ip_address(_host_port(value)[0]).is_unspecified:
            raise ValueError(f"listen {value!r}: give the IP the phones and trunks reach")
        return value

    @field_validator("shared_db_url")
    @classmethod
    def _shared_db(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _SHARED_DB.match(value):
            raise ValueError(
                f"shared_db_url {value!r} is not postgres://USER@HOST:PORT/DATABASE "
                "(no password: PGPASSFILE or ~/.pgpass holds it)"
            )
        return value

    @field_validator("trunk_sources")
    @classmethod
    def _subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return trunk_sources(value)

    @field_validator("public_numbers")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _NUMBER.match(item):
                raise ValueError(f"public number {item!r} may hold only A-Z a-z 0-9 + * # . _ -")
        return value

    @field_validator("outbound_targets")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            bare = item.removeprefix("sip:").removeprefix("tel:")
            if not (_NUMBER.match(bare) or _USER_AT_HOST.match(bare)):
                raise ValueError(f"outbound target {item!r} is not a number or user@host")
        return value

    @field_validator("scanner_user_agents")
    @classmethod
    def _scanners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _SCANNER.match(item):
                raise ValueError(f"scanner pattern {item!r}: lower-case letters, digits, ' ._/-'")
        return value

    @model_validator(mode="after")
    def _tls(self) -> Self:
        given = [x is not None for x in (self.tls_listen, self.tls_cert, self.tls_key)]
        if any(given) and not all(given):
            raise ValueError("tls_listen, tls_cert and tls_key go together: set all or none")
        return self

    @field_validator("require_encryption")
    @classmethod
    def _crypto_users(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _NUMBER.match(item):
                raise ValueError(f"require_encryption user {item!r}: A-Z a-z 0-9 + * # . _ -")
        return value

    @model_validator(mode="after")
    def _tls_client(self) -> Self:
        if self.tls_ca_file is not None and self.tls_listen is None:
            raise ValueError("tls_ca_file needs tls_listen (the TLS socket calls leave from)")
        return self

    @property
    def media_relay_enabled(self) -> bool:
        return self.media_relay.enabled_for(self.listen_host)

    @property
    def unacked_limit(self) -> int:
        """:attr:`unacked_per_source`, or half the pool's calls."""
        if self.unacked_per_source is not None:
            return self.unacked_per_source
        return max(1, sum(w.maxload for w in self.workers) // 2)

    @property
    def listen_host(self) -> str:
        return _host_port(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return _host_port(self.listen)[1]


def load_edge_settings(path: Path, overrides: Mapping[str, Any] | None = None) -> EdgeSettings:
    """Read a YAML file of :class:`EdgeSettings` keys; ``overrides`` win (None is skipped).
    Raises :class:`EdgeConfigError` with ``file:line:col: key: message`` lines."""
    return configfile.load(path, EdgeSettings, EdgeConfigError, overrides)


def settings_for_pool(
    edge: Mapping[str, Any],
    listen: str,
    workers: Sequence[str],
    data_dir: Path,
    maxload: int = 2,
) -> EdgeSettings:
    """EdgeSettings for a worker pool: ``edge`` holds the operator's keys (Settings.edge);
    ``workers`` are the workers' ``host:port`` (UDP: a worker must send from the port it
    listens on, that is how the edge tells a worker from a phone). Raises EdgeConfigError.
    """
    values: dict[str, Any] = {
        "run_dir": data_dir / "edge",
        "db_path": data_dir / "edge" / "edge.db",
        **edge,
        "listen": listen,
        "workers": [{"uri": f"sip:{w}", "maxload": maxload} for w in workers],
    }
    return configfile.validate(EdgeSettings, values, EdgeConfigError, label="edge settings")
