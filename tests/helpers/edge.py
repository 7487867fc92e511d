"""The Kamailio edge in tests: its settings under tmp_path, and SIPp stand-ins as asyncio processes.

The fixtures ``start_edge`` and ``start`` (tests/switch/edge/conftest.py, also used by the
presence tests) start an :class:`switch.edge.Edge` from :func:`edge_settings` and peers made
here; everything is stopped when the test ends, edge last.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from switch.edge import Edge, EdgeSettings
from switch.edge.settings import LOCATION_FLUSH_S
from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import Process
from tests.helpers.sipp import SIPP_SCENARIOS, sipp_argv

EdgeFactory = Callable[..., Awaitable[Edge]]
Starter = Callable[[Process], Awaitable[Process]]
SCENARIOS = SIPP_SCENARIOS

NUMBER = "+4930123456"  # the public number of every trunk_edge


def trunk_edge(*workers: int, maxload: int, rate: int = 100, **more: object) -> dict[str, object]:
    """Settings of an edge whose trunk is 127.0.0.1 (the SIPp callers), taking calls for
    :data:`NUMBER` to the ``workers`` (ports on 127.0.0.1), each up to ``maxload`` calls at
    once and ``rate`` new calls a second; ``more`` settings on top."""
    return {
        "workers": [{"uri": f"sip:{LOOPBACK}:{port}", "maxload": maxload} for port in workers],
        "trunk_sources": [f"{LOOPBACK}/32"],
        "public_numbers": [NUMBER],
        "worker_rate": rate,
        **more,
    }


needs_kamailio = pytest.mark.skipif(
    shutil.which("kamailio") is None or shutil.which("sipp") is None,
    reason="kamailio and sipp (Debian kamailio, sip-tester) are needed",
)

needs_db_postgres = pytest.mark.skipif(
    not any(
        Path(folder, "db_postgres.so").exists()
        for folder in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules")
    ),
    reason="db_postgres.so is missing (Debian kamailio-postgres-modules)",
)


def edge_settings(tmp_path: Path, **overrides: Any) -> EdgeSettings:
    values: dict[str, Any] = {
        "listen": f"{LOOPBACK}:{free_port(tcp=True)}",  # the edge listens on both
        "domain": "office",
        "db_path": tmp_path / "edge" / "edge.db",
        "run_dir": tmp_path / "edge",
        "shm_mb": 128,  # tests carry a few calls; 512 MB x many parallel runs is wasteful
        "children": 2,
        "ping_interval": 1,
        "log_level": 2,
    }
    values.update(overrides)
    return EdgeSettings.model_validate(values)


def sipp_worker(tmp: Path, port: int, scenario: str = "worker_uas.xml") -> Process:
    """A SIPp stand-in for a worker on 127.0.0.1:``port`` (answers OPTIONS pings)."""
    name = f"worker-{port}"
    argv = sipp_argv(
        SCENARIOS / scenario,
        port=port,
        media_port=free_port(tcp=True),
        messages=tmp / f"{name}.msg",
    )
    return Process(argv, tmp / f"{name}.out", cwd=tmp)


def sipp_caller(
    tmp: Path,
    edge_port: int,
    service: str,
    *,
    port: int | None = None,
    calls: int = 1,
    rate: float = 10,
    hold_ms: int = 100,
    domain: str | None = None,
    name: str = "caller",
) -> Process:
    """SIPp UAC calling ``service`` through the edge (trunk-style: no auth)."""
    argv = sipp_argv(
        SCENARIOS / "caller_uac.xml",
        target=f"{LOOPBACK}:{edge_port}",
        service=service,
        port=port or free_port(tcp=True),
        media_port=free_port(tcp=True),
        calls=calls,
        rate=rate,
        hold_ms=hold_ms,
        keys={"domain": domain or f"{LOOPBACK}:{edge_port}"},
        timeout=20,
        timeout_error=True,
        stat=tmp / f"{name}.csv",
        stat_every_s=1,
        errors=tmp / f"{name}.err",
    )
    return Process(argv, tmp / f"{name}.out", cwd=tmp)


PASSWORD = "s3cret"


def baresip_phone(tmp: Path, edge_port: int, user: str, password: str) -> Process:
    home = tmp / f"phone-{user}"
    home.mkdir()
    # baresip listens on UDP+TCP at the port and TLS at port+1 (PEERS.md §1).
    sip = free_port(tcp=True, span=2)
    rtp = free_port(tcp=True)
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method\tepoll",
                f"sip_listen\t127.0.0.1:{sip}",
                "audio_source\tausine,440",
                "audio_alert\tnone",
                "audio_player\tnone",
                "ausrc_srate\t48000",
                "ausrc_channels\t2",
                f"rtp_ports\t{rtp}-{rtp + 9}",
                "rtcp_mux\tno",
                "module_path\t/usr/lib/baresip/modules",
                "module\tg711.so",
                "module\tausine.so",
                "module_app\taccount.so",
                "",
            ]
        )
    )
    (home / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{edge_port}>;auth_pass={password};regint=60;"
        "answermode=auto;audio_codecs=PCMU\n"
    )
    (home / "contacts").write_text("")
    return Process(
        ["baresip", "-f", str(home), "-n", "127.0.0.1"], tmp / f"phone-{user}.log", cwd=tmp
    )


def stored_bindings(
    db: Path, user: str, within: float = LOCATION_FLUSH_S + 5
) -> list[tuple[str, str]]:
    """``(contact, received)`` of ``user`` in the edge's SQLite location table, waiting up
    to ``within`` seconds for the write-back timer; [] when none appeared by then."""
    deadline = time.monotonic() + within
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT contact, COALESCE(received, '') FROM location WHERE username = ?",
                (user,),
            ).fetchall()
        if rows or time.monotonic() > deadline:
            return [(contact, received) for contact, received in rows]
        time.sleep(0.2)
