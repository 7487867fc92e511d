"""Settings of a Rufweiche node: one YAML (or TOML) file, every key optional.

``rufweiche run`` with no settings file runs the embedded default: one worker on
127.0.0.1:5060, HTTP on 127.0.0.1:8080, SQLite under ``var/``, MQTT on
127.0.0.1:1883 if a broker answers there. Command-line options override the file.
The documented reference is docs/operations.md ("Settings").
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class SettingsError(Exception):
    """The settings file cannot be used; ``str()`` is the message for the operator."""


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port in {value!r} is not a number from 0 to 65535")
    return host.strip("[]"), int(port)


class Endpoint(BaseModel):
    """A ``host:port`` written as one string in the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


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
    edge: dict[str, Any] = Field(default_factory=dict)  # switch.edge.edge.EdgeSettings keys
    # Where the workers listen when an edge on another host (or a shared one) sends them
    # calls: worker i gets HOST:PORT+i. Unset: free loopback ports behind our own edge.
    workers_listen: str | None = None
    log_level: str = "INFO"

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

    def sip_endpoint(self) -> Endpoint:
        return endpoint(self.sip, 5060)

    def http_endpoint(self) -> Endpoint:
        return endpoint(self.http, 8080)


def load_settings(path: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read ``path`` (YAML or TOML by suffix), apply ``overrides`` (None values are skipped)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read settings: {exc.strerror}") from exc
        try:
            loaded = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise SettingsError(
                f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
            ) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: settings must be a mapping of keys, not {loaded!r}")
        data = loaded
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        lines = [
            f"{where}{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise SettingsError("\n".join(lines)) from None
