"""The edge: Kamailio in front of the workers, configured and run by the switch.

Theory of operation. :class:`EdgeSettings` holds everything the edge needs (listen
addresses, the workers, trunk addresses, the numbers that may be called, ...).
:func:`render_config` turns it into a Kamailio configuration from
``switch/edge/templates/kamailio.cfg.tmpl`` (a ``{{name}}`` renderer: Kamailio's own ``$``
pseudo-variables make ``string.Template`` a poor fit). :class:`Edge` writes the files
under ``run_dir`` (config, dispatcher list, ctl socket), prepares the SQLite database
(registrar, subscribers from the secrets file, presence), checks the configuration with
``kamailio -c`` and runs ``kamailio -DD -E`` as a child process::

    async with Edge(settings) as edge:   # start(): render, check, spawn, wait for OPTIONS
        ...                              # stop(): SIGTERM, then SIGKILL after a timeout

``python -m switch.edge --settings edge.yaml --edge external --out DIR`` only renders the
files, for a Kamailio run by someone else (docker compose, systemd). docs/edge.md has the
settings, the ports and the deployment sketch.

Error tree::

    EdgeError
     ├── EdgeConfigError   settings that cannot be rendered, or ``kamailio -c`` said no
     ├── EdgeStartError    Kamailio did not come up (exited, or no answer to OPTIONS)
     └── EdgeRpcError      an RPC to the running edge failed (:meth:`Edge.rpc`)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import os
import re
import secrets as _random
import signal
import sqlite3
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, Literal, Self

import aiohttp
import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from switch.edge.credentials import SecretsError, load_secrets, write_subscriber_table

TEMPLATE = Path(__file__).resolve().parent / "templates" / "kamailio.cfg.tmpl"
SCHEMA_DIR = Path("/usr/share/kamailio/db_sqlite")
# Tables the edge uses: version (standard), subscriber, location, presence, pl_pipes.
SCHEMAS = ("standard", "auth_db", "usrloc", "presence", "pipelimit")

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

_NUMBER = re.compile(r"^[A-Za-z0-9+*#._-]{1,64}$")
_USER_AT_HOST = re.compile(r"^[A-Za-z0-9+*#._-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_SCANNER = re.compile(r"^[a-z0-9 ._/-]{2,64}$")
_WORKER_URI = re.compile(r"^sip:[A-Za-z0-9.-]+:[0-9]{1,5}(;transport=(udp|tcp))?$")
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


class EdgeError(Exception):
    """The edge cannot be configured or run; ``str()`` is the message for the operator."""


class EdgeConfigError(EdgeError):
    """Settings that cannot be rendered, or a configuration that ``kamailio -c`` rejects."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class EdgeStartError(EdgeError):
    """Kamailio did not come up; ``log`` is the tail of its output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class EdgeRpcError(EdgeError):
    """An RPC to the edge failed: no connection, no answer in time, or a fault (``code``)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"address {value!r} is not host:port with a port from 1 to 65535")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        # Kamailio resolves names at start; an IP keeps the edge free of DNS (dns=no).
        raise ValueError(f"address {value!r}: the host must be an IP address") from None
    return host, int(port)


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
    scanner_user_agents: tuple[str, ...] = DEFAULT_SCANNERS  # lower-case substrings
    db_path: Path = Path("var/edge/edge.db")
    secrets_file: Path | None = None
    run_dir: Path = Path("var/edge")
    shm_mb: Annotated[int, Field(ge=64, le=65_536)] = 512  # DESIGN.md: 64 MB fails ~300 calls/s
    pkg_mb: Annotated[int, Field(ge=8, le=1024)] = 16
    children: Annotated[int, Field(ge=1, le=64)] = 4
    log_level: Annotated[int, Field(ge=-5, le=3)] = 1  # Kamailio debug=: 1 notice, 2 info

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
        if ipaddress.ip_address(_host_port(value)[0].strip("[]")).is_unspecified:
            raise ValueError(f"listen {value!r}: give the IP the phones and trunks reach")
        return value

    @field_validator("trunk_sources")
    @classmethod
    def _subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"trunk source {item!r} is not an IP address or CIDR") from None
        return value

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

    @property
    def listen_host(self) -> str:
        return _host_port(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return _host_port(self.listen)[1]


def load_edge_settings(path: Path, overrides: Mapping[str, Any] | None = None) -> EdgeSettings:
    """Read a YAML file of :class:`EdgeSettings` keys; ``overrides`` win (None is skipped)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise EdgeConfigError(f"{path}: cannot read edge settings: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise EdgeConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise EdgeConfigError(f"{path}: edge settings must be a mapping, not {data!r}")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return EdgeSettings.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise EdgeConfigError("\n".join(lines)) from None


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
    try:
        return EdgeSettings.model_validate(values)
    except ValidationError as exc:
        lines = [
            f"edge settings: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise EdgeConfigError("\n".join(lines)) from None


@dataclass(frozen=True)
class EdgePaths:
    """Where the rendered files live; all under ``run_dir`` except the database."""

    run_dir: Path
    db: Path

    @property
    def config(self) -> Path:
        return self.run_dir / "kamailio.cfg"

    @property
    def dispatcher_list(self) -> Path:
        return self.run_dir / "dispatcher.list"

    @property
    def ctl_socket(self) -> Path:
        return self.run_dir / "kamailio_ctl"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kamailio.pid"

    @property
    def log(self) -> Path:
        return self.run_dir / "kamailio.log"

    @classmethod
    def of(cls, settings: EdgeSettings) -> EdgePaths:
        return cls(run_dir=settings.run_dir.absolute(), db=settings.db_path.absolute())


def _regex_literal(text: str) -> str:
    # Kamailio string literals treat backslashes specially: use classes, never escapes.
    return "".join(f"[{c}]" if c in "+*#." else c for c in text)


def _alternatives(items: list[str]) -> str:
    return "^(" + "|".join(_regex_literal(i) for i in items) + ")$"


def _safe(name: str, value: str) -> str:
    # Every value lands inside a double-quoted Kamailio string or a bare token.
    if any(c in value for c in '"\\\n\r') or not value.isprintable():
        raise EdgeConfigError(f"edge setting {name}: value {value!r} has a quote, \\ or newline")
    return value


def template_values(settings: EdgeSettings, paths: EdgePaths) -> dict[str, str]:
    """The ``{{name}}`` values of the template, computed from ``settings``."""
    defines: list[str] = []
    if settings.tls_listen is not None:
        defines.append("#!define WITH_TLS")
    if settings.trunk_sources:
        defines.append("#!define WITH_TRUNKS")
    if settings.public_numbers:
        defines.append("#!define WITH_PUBLIC_NUMBERS")
    targets = [t.removeprefix("sip:").removeprefix("tel:") for t in settings.outbound_targets]
    users = [t for t in targets if "@" not in t]
    uris = [t for t in targets if "@" in t]
    if targets:
        defines.append("#!define WITH_OUTBOUND")
    # An alternative that never matches keeps the regex valid when one kind is missing.
    never = "^$never^"
    values = {
        "defines": "",
        "db_path": str(paths.db),
        "domain": settings.domain,
        "worker_rate": str(settings.worker_rate),
        "worker_tries": str(settings.worker_tries),
        "debug": str(settings.log_level),
        "children": str(settings.children),
        "listen": settings.listen,
        "listen_port": str(settings.listen_port),
        "advertise": f" advertise {settings.advertise}" if settings.advertise else "",
        "tls_listen": settings.tls_listen or "",
        "tls_cert": str(settings.tls_cert.absolute()) if settings.tls_cert else "",
        "tls_key": str(settings.tls_key.absolute()) if settings.tls_key else "",
        "ctl_socket": str(paths.ctl_socket),
        "fr_timer_ms": str(settings.worker_timeout_ms),
        "ban_seconds": str(settings.ban_seconds),
        "pike_window": str(settings.pike_window),
        "pike_density": str(settings.pike_density),
        "dispatcher_list": str(paths.dispatcher_list),
        "ping_interval": str(settings.ping_interval),
        "scanner_regex": "|".join(_regex_literal(s) for s in settings.scanner_user_agents) or never,
        "trunk_subnets": ",".join(settings.trunk_sources),
        "public_regex": _alternatives(list(settings.public_numbers))
        if settings.public_numbers
        else never,
        "outbound_user_regex": _alternatives(users) if users else never,
        "outbound_uri_regex": _alternatives(uris) if uris else never,
    }
    checked = {name: _safe(name, value) for name, value in values.items()}
    checked["defines"] = "\n".join(defines)  # made here from fixed strings only
    return checked


def render(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{name}}``; a placeholder without a value is an error, not a blank."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise EdgeConfigError(f"edge template: placeholder {{{{{name}}}}} has no value")
        return values[name]

    return _PLACEHOLDER.sub(one, template)


def render_config(settings: EdgeSettings, paths: EdgePaths | None = None) -> str:
    paths = paths or EdgePaths.of(settings)
    return render(TEMPLATE.read_text(encoding="utf-8"), template_values(settings, paths))


def render_dispatcher_list(settings: EdgeSettings) -> str:
    """Set 1, one line per worker: ``1 URI flags priority attrs`` (dispatcher README §6.1)."""
    lines = ["# setid destination flags priority attrs (generated by switch/edge/)"]
    for index, worker in enumerate(settings.workers, start=1):
        lines.append(f"1 {worker.uri} 0 0 duid=w{index};maxload={worker.maxload}")
    return "\n".join(lines) + "\n"


def prepare_database(settings: EdgeSettings, db: Path) -> None:
    """Create the tables Kamailio needs when missing, and load the subscribers."""
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "version" not in have:
                for name in SCHEMAS:
                    script = (SCHEMA_DIR / f"{name}-create.sql").read_text(encoding="utf-8")
                    conn.executescript(script)
    except OSError as exc:
        raise EdgeConfigError(
            f"edge database schema {exc.filename!r}: {exc.strerror}"
            " (install kamailio-sqlite-modules)"
        ) from exc
    except sqlite3.Error as exc:
        raise EdgeConfigError(f"edge database {str(db)!r}: {exc}") from exc
    if settings.secrets_file is not None:
        try:
            secrets = load_secrets(settings.secrets_file)
            if secrets.realm != settings.domain:
                raise EdgeConfigError(
                    f"{settings.secrets_file}: realm {secrets.realm!r} is not the edge domain"
                    f" {settings.domain!r}: every HA1 would be wrong"
                )
            write_subscriber_table(db, secrets)
        except SecretsError as exc:
            raise EdgeConfigError(str(exc)) from exc


def forget_presence(db: Path) -> None:
    """Drop published documents of an earlier run (tables presentity, pua). The switch
    publishes every person again after each start (presence/sip.py); a stale document with
    an ETag no one holds would otherwise live on until it expires."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("DELETE FROM presentity")
            conn.execute("DELETE FROM pua")
    except sqlite3.Error as exc:
        raise EdgeConfigError(f"edge database {str(db)!r}: {exc}") from exc


def write_files(settings: EdgeSettings) -> EdgePaths:
    """Render the config and dispatcher list into ``run_dir`` and prepare the database."""
    paths = EdgePaths.of(settings)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.dispatcher_list.write_text(render_dispatcher_list(settings), encoding="utf-8")
    paths.config.write_text(render_config(settings, paths), encoding="utf-8")
    prepare_database(settings, paths.db)
    return paths


def kill_orphan(pid_file: Path, config: Path, wait: float = 5.0) -> bool:
    """Stop a Kamailio left running by a supervisor that was killed (SIGKILL gives it no
    chance to stop its edge): the pid file names it, and its command line must name our
    config, so a foreign process that reused the pid is never touched."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    if str(config).encode() not in cmdline:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _options(host: str, port: int, call_id: str) -> bytes:
    # RFC 3261 §11: OPTIONS to the server itself; rport (RFC 3581) brings the answer back here.
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:9;branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{host}>;tag={call_id}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}@rufweiche\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        parts = data.split(b" ", 2)
        is_reply = len(parts) > 1 and parts[0] == b"SIP/2.0" and parts[1].isdigit()
        if is_reply and not self.status.done():
            self.status.set_result(int(parts[1]))


async def options_ping(
    host: str, port: int, wait: float = 0.5, source: str = "127.0.0.1"
) -> int | None:
    """Send one OPTIONS over UDP; the status code of the answer, or None on no answer."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Reply, local_addr=(source, 0), remote_addr=(host, port)
    )
    try:
        transport.sendto(_options(host, port, _random.token_hex(8)))
        async with asyncio.timeout(wait):
            return await proto.status
    except TimeoutError:
        return None
    finally:
        transport.close()


class Edge:
    """Kamailio as a child process. ``async with Edge(settings) as edge: ...``."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        kamailio: str = "kamailio",
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        rpc_timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.paths = EdgePaths.of(settings)
        self._kamailio = kamailio
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._rpc_timeout = rpc_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._rpc_ids = itertools.count(1)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.paths.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def write_files(self) -> EdgePaths:
        return write_files(self.settings)

    async def check_config(self) -> None:
        """``kamailio -c -f CFG``: raises :class:`EdgeConfigError` with its output."""
        proc = await asyncio.create_subprocess_exec(
            self._kamailio,
            "-c",
            "-f",
            str(self.paths.config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            errors = [line for line in text.splitlines() if "ERROR" in line or "CRITICAL" in line]
            lines = text.strip().splitlines()
            first = errors[0] if errors else (lines[-1] if lines else "no output")
            raise EdgeConfigError(
                f"kamailio config {str(self.paths.config)!r} rejected: {first!r}", output=text
            )

    async def start(self) -> None:
        if self.running:
            raise EdgeStartError(f"edge already running as pid {self.pid!r}")
        await asyncio.to_thread(self.write_files)
        await asyncio.to_thread(forget_presence, self.paths.db)
        await self.check_config()
        await asyncio.to_thread(kill_orphan, self.paths.pid_file, self.paths.config)
        with contextlib.suppress(FileNotFoundError):
            self.paths.ctl_socket.unlink()
        log = self.paths.log.open("wb")
        try:
            # A new session: stop() can kill Kamailio's forked children by process group.
            self._process = await asyncio.create_subprocess_exec(
                self._kamailio,
                "-DD",
                "-E",
                "-f",
                str(self.paths.config),
                "-m",
                str(self.settings.shm_mb),
                "-M",
                str(self.settings.pkg_mb),
                "-Y",
                str(self.paths.run_dir),
                "-P",
                str(self.paths.pid_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def rpc(self, method: str, *params: str) -> Any:
        """Call a Kamailio RPC command (e.g. ``pua.publish``) and return its result.

        JSON-RPC 2.0 over HTTP on the edge's own TCP listener (xhttp + jsonrpcs; the
        template answers it only for this host). Not binrpc through ``kamcmd``: Kamailio
        5.6 refuses ``pua.publish`` and ``pua.send_publish`` there ("600 Reply wait/async
        mode not supported by this rpc transport"); only the HTTP transport of jsonrpcs
        carries the delayed reply they need. Bounded by ``rpc_timeout``; raises
        :class:`EdgeRpcError`.
        """
        request = {"jsonrpc": "2.0", "id": next(self._rpc_ids), "method": method}
        if params:
            request["params"] = list(params)
        url = f"http://{self.settings.listen}/RPC"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._rpc_timeout)) as s,
                s.post(url, json=request) as response,
            ):
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise EdgeRpcError(
                f"edge RPC {method!r} to {url!r}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise EdgeRpcError(
                f"edge RPC {method!r}: HTTP {response.status}, not JSON: {text[:200]!r}"
            ) from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if error is not None or not isinstance(answer, dict) or "result" not in answer:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else text[:200]
            raise EdgeRpcError(f"edge RPC {method!r} failed: {message!r}", code=code)
        return answer["result"]

    async def _wait_ready(self) -> None:
        host, port = self.settings.listen_host, self.settings.listen_port
        deadline = time.monotonic() + self._start_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise EdgeStartError(
                    f"kamailio exited with {self._process.returncode!r} at start",
                    log=self.log_tail(),
                )
            if await options_ping(host, port, wait=0.2) is not None:
                return
        raise EdgeStartError(
            f"kamailio gave no answer to OPTIONS on {self.settings.listen!r} within"
            f" {self._start_timeout!r} s",
            log=self.log_tail(),
        )

    async def stop(self) -> None:
        """SIGTERM to Kamailio; SIGKILL to its process group if it is not gone in time."""
        proc = self._process
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self._stop_timeout):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        # Children left behind by a killed main process share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._process = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


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
        output = getattr(exc, "output", "") or getattr(exc, "log", "")
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
