"""The rendered edge: ``kamailio.cfg`` from the template, the dispatcher list, the files on disk.

``templates/kamailio.cfg.tmpl`` is filled by a ``{{name}}`` renderer (Kamailio's own ``$``
pseudo-variables make ``string.Template`` a poor fit): :func:`template_values` computes
every value from :class:`~switch.edge.settings.EdgeSettings`, :func:`render` refuses a
placeholder without one, :func:`write_files` puts the files under ``run_dir``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from switch.edge.database import prepare_database
from switch.edge.natmedia import nat_media_defines, nat_media_values, tls_profile
from switch.edge.settings import LOCATION_FLUSH_S, EdgeSettings
from switch.edge.shared_db import prepare_shared_database
from switch.edge.trunkcfg import template_parts
from switch.errors import EdgeConfigError

TEMPLATE = Path(__file__).resolve().parent / "templates" / "kamailio.cfg.tmpl"
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


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
    def tls_config(self) -> Path:
        return self.run_dir / "tls.cfg"

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
    if settings.trunks.accounts:
        defines.append("#!define WITH_UAC")
    if settings.shared_db_url:
        defines.append("#!define WITH_SHARED_DB")
    # An alternative that never matches keeps the regex valid when one kind is missing.
    never = "^$never^"
    values = {
        "defines": "",
        "db_path": str(paths.db),
        "shared_db_url": settings.shared_db_url or f"sqlite://{paths.db}",
        "uac_reg_active": "1" if settings.register_trunks else "0",
        "domain": settings.domain,
        "worker_rate": str(settings.worker_rate),
        "worker_tries": str(settings.worker_tries),
        "debug": str(settings.log_level),
        "children": str(settings.children),
        "location_flush_s": str(LOCATION_FLUSH_S),
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
        "retry_after": str(settings.retry_after),
        "unacked_per_source": str(settings.unacked_limit),
        # Kamailio's core and sanity log parse errors at ERROR with the whole packet: below
        # debug level (3) only their CRITICAL lines pass; the script logs them short.
        "core_log_level": str(settings.log_level if settings.log_level >= 3 else -2),
        "scanner_regex": "|".join(_regex_literal(s) for s in settings.scanner_user_agents) or never,
        "trunk_subnets": ",".join(settings.trunk_sources),
        "public_regex": _alternatives(list(settings.public_numbers))
        if settings.public_numbers
        else never,
        "outbound_user_regex": _alternatives(users) if users else never,
        "outbound_uri_regex": _alternatives(uris) if uris else never,
    }
    values.update(nat_media_values(settings, paths.tls_config))  # issue 15: natmedia.py
    defines += nat_media_defines(settings)
    checked = {name: _safe(name, value) for name, value in values.items()}
    checked["defines"] = "\n".join(defines)  # made here from fixed strings only
    # Generated from validated trunk settings only (switch/edge/trunkcfg.py).
    checked.update(template_parts(settings.trunks, settings.advertise or settings.listen))
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


def write_files(settings: EdgeSettings) -> EdgePaths:
    """Render the config and dispatcher list into ``run_dir`` and prepare the database."""
    paths = EdgePaths.of(settings)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.dispatcher_list.write_text(render_dispatcher_list(settings), encoding="utf-8")
    paths.config.write_text(render_config(settings, paths), encoding="utf-8")
    if settings.tls_ca_file is not None:
        paths.tls_config.write_text(tls_profile(settings), encoding="utf-8")
    prepare_database(settings, paths.db)
    if settings.shared_db_url:
        prepare_shared_database(settings)
    return paths
