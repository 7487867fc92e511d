"""Settings of a Rufweiche node: one YAML (or TOML) file, every key optional.

``rufweiche run`` with no settings file runs the embedded default: one worker on
127.0.0.1:5060, HTTP on 127.0.0.1:8080, SQLite under ``var/``, MQTT on
127.0.0.1:1883 if a broker answers there. Command-line options override the file.
The documented reference is docs/operations.md ("Settings").

The file is read by :mod:`switch.configfile`: every problem is a
``settings.yaml:12:3: key: message, did you mean …`` line of a :class:`SettingsError`,
the ``edge:`` section included (it is an :class:`~switch.edge.settings.EdgeSettings`,
validated here at load, not when the edge starts).
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from switch import configfile
from switch.addresses import join_host_port, parse_host_port
from switch.edge.rtpengine import PORTS_PER_CALL
from switch.edge.settings import EdgeSettings
from switch.edge.trunks import TrunksSettings
from switch.errors import ConfigProblem, SettingsError
from switch.mail import MailServer
from switch.records.backend import RecordsSettings
from switch.supervisor.queues import QueueSpec

__all__ = [
    "Endpoint",
    "MqttSettings",
    "RecordsSettings",
    "RetentionSettings",
    "Settings",
    "SettingsError",
    "endpoint",
    "load_settings",
]


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    return parse_host_port(value, default_port, allow_empty_host=True)


class Endpoint(BaseModel):
    """A ``host:port`` written as one string in the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str
    port: int

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)


def endpoint(value: str | Endpoint, default_port: int) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    host, port = _host_port(value, default_port)
    return Endpoint(host=host, port=port)


class MqttSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    broker: str = "127.0.0.1:1883"
    username: str | None = None
    password_file: Path | None = None  # never the password itself in this file
    home_assistant_discovery: bool = True
    # Several nodes on one broker: share what people set, last writer wins (presence/peers.py);
    # the node's name is records.node.
    share_presence: bool = False

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        _host_port(value, 1883)
        return value


_AGE = r"^\d+[dhw]?$"


class RetentionOverride(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    calls: Annotated[str, Field(pattern=_AGE)] | None = None
    voicemail: Annotated[str, Field(pattern=_AGE)] | None = None
    dictation: Annotated[str, Field(pattern=_AGE)] | None = None


class RetentionSettings(BaseModel):
    """``retention:`` — how long data is kept; the running switch deletes what is older
    once at start and then daily (switch/supervisor/retention.py). ``null`` = keep."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    calls: Annotated[str, Field(pattern=_AGE)] | None = "90d"
    voicemail: Annotated[str, Field(pattern=_AGE)] | None = "30d"
    dictation: Annotated[str, Field(pattern=_AGE)] | None = "30d"
    # None: as the users file's ``audit_retention_days`` says (180 d by default).
    audit: Annotated[str, Field(pattern=_AGE)] | None = None
    # Per tenant (the dial plan's tenant id), the keys to change for that business.
    tenants: dict[str, RetentionOverride] = Field(default_factory=dict)
    interval_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 24.0


class SmtpSettings(BaseModel):
    """A business's own mail server (issue 18): messages and notices for the owner go there,
    and nowhere else. The password lives in a file of its own (``password_file``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    username: str | None = None
    password_file: Path | None = None  # never the password itself in this file
    sender: str | None = None  # From: (default: the plan's owner_email)
    cafile: Path | None = None  # CA of a server with its own certificate

    def server(self) -> MailServer:
        password = self.password_file.read_text().strip() if self.password_file else None
        return MailServer(
            self.host,
            self.port,
            self.starttls,
            self.username,
            password,
            self.sender,
            self.cafile,
        )


class NotifySettings(BaseModel):
    """Notices to owners (issue 18): missed calls; recordings attached, linked or not mailed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    missed: bool = True
    recordings: Literal["attach", "link", "none"] = "attach"
    base_url: str | None = None  # for "link": where the owner reaches /files/...


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dialplans: tuple[Path, ...] = (Path("dialplans"),)
    data_dir: Path = Path("var")
    sip: str = "127.0.0.1:5060"  # with one worker: the worker's own SIP address
    http: str = "127.0.0.1:8080"
    # 256: 512 bridged calls at 2 per worker (issue 16: a 2-core node carries ~500 held
    # calls by CPU; bench/concurrency.py ran 158 workers). Nothing else is sized by it: a
    # port and a pipe per worker, one dispatcher entry each, ~14 MB PSS per forked worker,
    # and rtpengine's port range (_relay_ports_hold_the_calls).
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    # URI host aliases used in dial plans, e.g. {"office": "127.0.0.1:5070"} (the registrar)
    routes: dict[str, str] = Field(default_factory=dict)
    trunk: str | None = None  # where tel: targets go (a SIP trunk / gateway), host:port
    grace_seconds: Annotated[float, Field(ge=0, le=3600)] = 10.0
    recycle_after_calls: Annotated[int, Field(ge=0)] = 5000  # 0 = never
    # Issue 16: "fork": workers are forked from one zygote that imported everything and
    # compiled the plans once (shared pages, switch/worker/forkserver.py); "spawn": each
    # worker is its own `python -m switch.worker` (the fallback, and the benchmark baseline).
    worker_start: Literal["fork", "spawn"] = "fork"
    # Call legs per worker that ordinary calls leave free for 110/112 (docs/operations.md
    # "Emergency calls"). 0: none kept; 1 or 2: each worker takes one bridged call less
    # (the edge's maxload follows), and an emergency call always finds a worker with room.
    emergency_reserve: Annotated[int, Field(ge=0, le=2)] = 0
    mqtt: MqttSettings = MqttSettings()
    # The Kamailio edge in front of the workers (docs/edge.md, issue 15): "auto" and
    # "managed": always, one worker included (no untrusted packet reaches pjsua2);
    # "external": render its files for someone else to run; "off": a bare worker for tests
    # and benchmarks, on a loopback address only (_bare_worker_on_loopback).
    edge_mode: Literal["auto", "managed", "external", "off"] = "auto"
    # The operator's EdgeSettings keys (only those given count: Settings.edge_overrides()).
    edge: EdgeSettings = EdgeSettings()
    # Where the workers listen when an edge on another host (or a shared one) sends them
    # calls: worker i gets HOST:PORT+i. Unset: free loopback ports behind our own edge.
    workers_listen: str | None = None
    log_level: str = "INFO"
    # SIP trunk accounts, registered and authenticated by the edge (docs/trunks.md).
    trunks: TrunksSettings = TrunksSettings()
    # The secretarial service's queues, used by the plans' {queue: name} (docs/queues.md).
    queues: dict[str, QueueSpec] = Field(default_factory=dict)

    # Without the edge (edge_mode off, one worker): keep one pjsua call slot free, so that
    # an overflow call gets 503 + Retry-After instead of pjsua's own 486 Busy Here, which
    # a trunk takes for "callee busy" and never retries. Costs one bridged call of two.
    # Behind the edge it is not needed: the edge turns that 486 into 503 (docs/edge.md).
    spare_leg: bool = False

    # Where the call records are: SQLite under data_dir (default) or a PostgreSQL schema
    # that several nodes share (switch/records/backend.py, docs/operations.md), and what
    # happens when they cannot be written (issue 14).
    records: RecordsSettings = Field(default_factory=RecordsSettings)
    # Media bypass (issue 16, switch/call/mediapath.py): a bridged call's RTP flows
    # caller <-> rtpengine <-> callee instead of through the pjsua2 bridge. None: on
    # exactly when the managed edge runs rtpengine (media leaves the host); true/false
    # forces it. A transfer pulls the media back into the bridge (re-INVITE).
    media_bypass: bool | None = None

    retention: RetentionSettings = RetentionSettings()

    # Issue 18: the mail server of messages for owners; per tenant where a business has its own.
    smtp: SmtpSettings | None = None
    smtp_tenants: dict[str, SmtpSettings] = Field(default_factory=dict)
    notify: NotifySettings = NotifySettings()

    def smtp_for(self, tenant: str) -> SmtpSettings | None:
        return self.smtp_tenants.get(tenant, self.smtp)

    @model_validator(mode="after")
    def _workers_need_a_front(self) -> Settings:
        if self.workers > 1 and self.edge_mode == "off" and self.workers_listen is None:
            raise ValueError(
                "several workers need the edge in front (edge_mode: auto or managed), "
                "or workers_listen for an edge that runs elsewhere"
            )
        return self

    @model_validator(mode="after")
    def _relay_ports_hold_the_calls(self) -> Settings:
        relay = self.edge.media_relay
        if self.edge_enabled and relay.mode != "off" and relay.calls() < 2 * self.workers:
            raise ValueError(
                f"edge.media_relay: ports {relay.port_min}-{relay.port_max} relay"
                f" {relay.calls()} calls at once ({PORTS_PER_CALL} ports each), the"
                f" {self.workers} workers carry {2 * self.workers}: raise port_max"
            )
        return self

    @model_validator(mode="after")
    def _bare_worker_on_loopback(self) -> Settings:
        # Issue 14 item 1: an INVITE sent straight to a worker port bypassed the edge. A
        # pjsua2 worker never faces the network (DESIGN.md): without the edge it may own
        # only a loopback address, and workers_listen is loopback only.
        if self.edge_mode == "off" and self.workers_listen is None:
            _require_loopback("sip", self.sip, "with edge_mode: off the worker owns it")
        if self.workers_listen is not None:
            _require_loopback(
                "workers_listen", self.workers_listen, "run the edge on this host instead"
            )
        return self

    @field_validator("sip", "http", "trunk", "workers_listen")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            _host_port(value, 0)
        return value

    @property
    def edge_enabled(self) -> bool:
        return self.edge_mode != "off"

    @property
    def media_bypass_enabled(self) -> bool:
        """Whether the workers get ``--media-bypass`` (see :attr:`media_bypass`)."""
        if self.media_bypass is not None:
            return self.media_bypass
        # The edge listens where the switch's ``sip`` is, unless ``edge.listen`` says else
        # (topology.edge_settings); rtpengine runs when that address is not loopback.
        listen = self.edge.listen if "listen" in self.edge_overrides() else str(self.sip)
        host = endpoint(listen, 5060).host
        if self.edge_mode not in ("auto", "managed"):
            return False
        try:
            return self.edge.media_relay.enabled_for(host)
        except ValueError:  # a host name: the edge refuses it anyway (a concrete IP)
            return False

    def edge_overrides(self) -> dict[str, Any]:
        """The ``edge:`` keys the operator wrote, validated; they win over derived values."""
        return self.edge.model_dump(exclude_unset=True)

    def sip_endpoint(self) -> Endpoint:
        return endpoint(self.sip, 5060)

    def http_endpoint(self) -> Endpoint:
        return endpoint(self.http, 8080)


def load_settings(path: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read ``path`` (YAML, or TOML by suffix), apply ``overrides`` (None values are skipped).

    Raises :class:`SettingsError`; a YAML file's problems carry their line and column.
    """
    if path is None:
        return configfile.validate(Settings, _given(overrides), SettingsError, label="settings")
    if path.suffix != ".toml":
        return configfile.load(path, Settings, SettingsError, overrides)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError([_problem(path, f"cannot read settings: {exc.strerror}")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError([_problem(path, f"not valid toml: {exc}")]) from None
    data.update(_given(overrides))
    return configfile.validate(Settings, data, SettingsError, label=str(path))


def _require_loopback(key: str, value: str, why: str) -> None:
    host = _host_port(value, 0)[0]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"{key} {value!r}: a worker listens on a loopback address only ({why}); "
            "phones and trunks reach the workers through the edge"
        )


def _given(overrides: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (overrides or {}).items() if v is not None}


def _problem(path: Path, message: str) -> ConfigProblem:
    return ConfigProblem(str(path), 0, 0, "", message)
