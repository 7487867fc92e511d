"""WorkerConfig: what one worker process is started with (from its command line)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from switch.call.trunkident import TrunkLine


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    name: str
    host: str
    port: int
    dialplans: tuple[Path, ...]
    routes: Mapping[str, str] = field(default_factory=dict)
    trunk: str | None = None
    grace: float = 10.0
    # pjsua itself answers 486 (statelessly, before the application sees the INVITE)
    # when all its call slots hold legs. Keeping one slot spare makes every overflow
    # call get our 503 + Retry-After instead, at the price of one bridged call less.
    spare_leg: bool = False
    # Legs ordinary calls leave free for 110/112 (settings ``emergency_reserve``; the
    # edge then offers this worker fewer calls, see switch/supervisor/topology.py).
    emergency_reserve: int = 0
    # Media services (announcements, voicemail, answer confirmation) keep their files
    # here; without it VOICEMAIL/ANNOUNCEMENT finals reject and confirm is not asked.
    data_dir: Path | None = None
    # SIP trunks (docs/trunks.md): tel: targets of a tenant leave through its trunk, sent to
    # ``trunk`` (the edge) with the identity headers the trunk's profile prescribes.
    trunks: tuple[TrunkLine, ...] = ()
    # Media bypass (issue 16, switch/call/mediapath.py): a bridged call's RTP flows end to
    # end (through rtpengine where it leaves the host) instead of through the pjsua2 bridge.
    media_bypass: bool = False

    @property
    def sip(self) -> str:
        return f"{self.host}:{self.port}"


__all__ = ["WorkerConfig"]
