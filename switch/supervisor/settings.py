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

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from switch import configfile
from switch.addresses import join_host_port, parse_host_port
from switch.edge.settings import EdgeSettings
from switch.errors import ConfigProblem, SettingsError
from switch.records.backend import RecordsSettings

__all__ = ["Endpoint", "MqttSettings", "Settings", "SettingsError", "endpoint", "load_settings"]


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


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dialplans: tuple[Path, ...] = (Path("dialplans"),)
    data_dir: Path = Path("var")
    sip: str = "127.0.0.1:5060"  # with one worker: the worker's own SIP address
    http: str = "127.0.0.1:8080"
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # URI host aliases used in dial plans, e.g. {"office": "127.0.0.1:5070"} (the registrar)
    routes: dict[str, str] = Field(default_factory=dict)
    trunk: str | None = None  # where tel: targets go (a SIP trunk / gateway), host:port
    grace_seconds: Annotated[float, Field(ge=0, le=3600)] = 10.0
    recycle_after_calls: Annotated[int, Field(ge=0)] = 5000  # 0 = never
    mqtt: MqttSettings = MqttSettings()
    # The Kamailio edge in front of the workers (docs/edge.md). "auto": with more than one
    # worker; "managed": always; "external": render its files for someone else to run;
    # "off": never (one worker owns the SIP address).
    edge_mode: Literal["auto", "managed", "external", "off"] = "auto"
    # The operator's EdgeSettings keys (only those given count: Settings.edge_overrides()).
    edge: EdgeSettings = EdgeSettings()
    # Where the workers listen when an edge on another host (or a shared one) sends them
    # calls: worker i gets HOST:PORT+i. Unset: free loopback ports behind our own edge.
    workers_listen: str | None = None
    log_level: str = "INFO"
    # Where the call records are: SQLite under data_dir (default) or a PostgreSQL schema
    # that several nodes share (switch/records/backend.py, docs/operations.md).
    records: RecordsSettings = Field(default_factory=RecordsSettings)

    @model_validator(mode="after")
    def _workers_need_a_front(self) -> Settings:
        if self.workers > 1 and self.edge_mode == "off" and self.workers_listen is None:
            raise ValueError(
                "several workers need the edge in front (edge_mode: auto or managed), "
                "or workers_listen for an edge that runs elsewhere"
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
        return self.edge_mode in ("managed", "external") or (
            self.edge_mode == "auto" and self.workers > 1
        )

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


def _given(overrides: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (overrides or {}).items() if v is not None}


def _problem(path: Path, message: str) -> ConfigProblem:
    return ConfigProblem(str(path), 0, 0, "", message)
