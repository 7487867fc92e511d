"""Registration state of the SIP trunks, read from the edge's ``uac.reg_dump`` periodically.

Kamailio's uac module registers the trunks; this task only watches: every
``trunks.poll_interval`` seconds it asks the edge, keeps per trunk whether it is
registered, logs every change (a wrong password reads "trunk sipgate: registration
failed …, retried every 60 s"), and exposes ``rufweiche_trunk_registered{trunk}`` (0/1)
and ``rufweiche_trunk_registration_failures_total{trunk}`` on /metrics and the state on
/healthz (``detail.trunks``) and the dashboard. The password column of the dump is never
kept or logged.

uac's flags (uac_reg.c, Kamailio 5.6): 1 disabled, 2 ongoing, 4 online, 8 auth sent,
16 initial. "Failed" is: not online, not ongoing, after a first attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from switch.edge.trunks import TrunksSettings
from switch.errors import EdgeError

log = logging.getLogger("rufweiche.trunks")

FLAG_DISABLED, FLAG_ONGOING, FLAG_ONLINE, FLAG_AUTHSENT, FLAG_INIT = 1, 2, 4, 8, 16


@dataclass
class TrunkState:
    """What /healthz shows of one trunk."""

    registered: bool = False
    state: str = "unknown"  # unknown | registering | registered | failed | disabled
    failures: int = 0
    since: float = 0.0  # wall clock of the last change
    expires: int = 0
    registrar: str = ""
    tenants: tuple[str, ...] = ()
    last_error: str = ""  # what the last failure was, kept after the trunk recovers
    last_error_at: float = 0.0  # its wall clock


def classify(flags: int) -> str:
    """uac's flags as one word."""
    if flags & FLAG_DISABLED:
        return "disabled"
    if flags & FLAG_ONLINE:
        return "registered"
    if flags & FLAG_ONGOING:
        return "registering"
    return "failed"


def _records(dump: Any) -> list[dict[str, Any]]:
    # reg_dump answers a list of records (jsonrpcs), older versions a dict holding one.
    if isinstance(dump, dict):
        dump = dump.get("records", [dump])
    return [r for r in dump if isinstance(r, dict)] if isinstance(dump, list) else []


class TrunkMonitor:
    """Polls ``uac.reg_dump`` through ``rpc`` and keeps :class:`TrunkState` per trunk."""

    def __init__(
        self,
        trunks: TrunksSettings,
        rpc: Callable[..., Awaitable[Any]],
        registry: CollectorRegistry,
        on_change: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.trunks = trunks
        self.rpc = rpc
        # The dashboard's trunk card (LiveFeed.set_trunks) hears of every change.
        self.on_change = on_change
        self.states = {
            t.name: TrunkState(
                registrar=t.registrar, tenants=tuple(sorted({b.tenant for b in t.numbers}))
            )
            for t in trunks.accounts
        }
        self.registered = Gauge(
            "rufweiche_trunk_registered",
            "1 while the trunk's registration is confirmed by the provider",
            ["trunk"],
            registry=registry,
        )
        self.failures = Counter(
            "rufweiche_trunk_registration_failures",
            "registrations the provider refused or did not answer",
            ["trunk"],
            registry=registry,
        )
        for name in self.states:
            self.registered.labels(trunk=name).set(0)
            self.failures.labels(trunk=name)

    def update(self, dump: Any) -> None:
        """Apply one ``uac.reg_dump`` answer (pure apart from logging and the metrics)."""
        seen: set[str] = set()
        for record in _records(dump):
            name = str(record.get("l_uuid", ""))
            state = self.states.get(name)
            if state is None:
                continue
            seen.add(name)
            flags = int(record.get("flags", 0))
            word = classify(flags)
            if word == "failed" and state.state == "unknown":
                word = "registering"  # the first attempt has not been answered yet
            state.expires = int(record.get("expires", 0) or 0)
            self._set(name, state, word)
        for name, state in self.states.items():
            if name not in seen:
                self._set(name, state, "unknown")

    def _set(self, name: str, state: TrunkState, word: str) -> None:
        if word == state.state:
            return
        previous, state.state = state.state, word
        state.since = time.time()
        state.registered = word == "registered"
        self.registered.labels(trunk=name).set(1 if state.registered else 0)
        retry = min((t.retry_interval for t in self.trunks.accounts), default=60)
        if word == "registered":
            log.info("trunk %s: registered at %s", name, state.registrar)
        elif word == "failed":
            state.failures += 1
            self.failures.labels(trunk=name).inc()
            # uac.reg_dump has no reply code: a refusal and silence look alike here.
            state.last_error = (
                f"registration at {state.registrar} failed (refused: wrong password? or no answer)"
            )
            state.last_error_at = state.since
            log.error(
                "trunk %s: registration at %s failed (wrong password, or no answer;"
                " was %s), retried every %d s",
                name,
                state.registrar,
                previous,
                retry,
            )
        elif word in ("disabled", "unknown") and previous != "unknown":
            log.warning("trunk %s: registration %s", name, word)
        if self.on_change is not None:
            self.on_change(self.rows())

    async def poll_once(self) -> None:
        try:
            dump = await self.rpc("uac.reg_dump")
        except EdgeError as exc:
            log.debug("trunk state not read: %s", exc)
            return
        self.update(dump)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set (the supervisor's ``stopping``)."""
        while not stop.is_set():
            await self.poll_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.trunks.poll_interval)

    def detail(self) -> dict[str, Any]:
        return {
            name: {
                "registered": s.registered,
                "state": s.state,
                "failures": s.failures,
                "since": round(s.since, 1),
                "registrar": s.registrar,
                "last_error": s.last_error or None,
                "last_error_at": round(s.last_error_at, 1) or None,
            }
            for name, s in self.states.items()
        }

    def rows(self) -> list[dict[str, Any]]:
        """The dashboard's trunk card: one row per trunk, with the tenants it serves."""
        detail = self.detail()
        return [
            {"name": name, "tenants": list(self.states[name].tenants), **detail[name]}
            for name in sorted(detail)
        ]


__all__ = ["TrunkMonitor", "TrunkState", "classify"]
