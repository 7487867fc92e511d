"""Ringback: the tone a caller hears while the switch rings a transfer target for it.

Without the media services (no data directory, no prompts) a caller put on hold for a
transfer would hear silence; :class:`Ringback` plays the German ringback tone
(:func:`~switch.worker.announcements.write_ringback`) to it through the endpoint's media
ports until the flow stops it (:class:`~switch.call.events.StopPlayback`). The tone file
is written once per process into a temporary directory; a playlist of
:data:`CADENCES` copies covers the longest wait (transfer timeout plus a recall) without a
looping player.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from switch.worker.announcements import write_ringback

log = logging.getLogger("switch.worker")

CADENCES = 24
"""5 s cadences in one playlist: two minutes of ringback."""


class TonePorts(Protocol):
    """What ringback needs of switch.pjsua.media.MediaPorts (a fake in unit tests)."""

    def play(self, handle: int, files: list[str]) -> int: ...
    def stop(self, token: int) -> None: ...
    def ended(self) -> list[Any]: ...


class Ringback:
    """Ringback tones of one worker, by (call key, leg)."""

    def __init__(self, ports: TonePorts, *, owns_ended: bool) -> None:
        self.ports = ports
        # Without media services nobody else collects the players that reached their
        # end; with them MediaServices.ended() does (and skips our tokens).
        self.owns_ended = owns_ended
        self._dir: Path | None = None
        self._tokens: dict[tuple[int, int], int] = {}

    def _file(self) -> str:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="rufweiche-ringback-"))
        path = self._dir / "ringback-425.wav"
        if not path.exists():
            write_ringback(path)
        return str(path)

    def play(self, key: int, leg: int, handle: int) -> bool:
        """Start the tone to ``handle``; False when it cannot play (logged)."""
        if (key, leg) in self._tokens:
            return True
        try:
            token = self.ports.play(handle, [self._file()] * CADENCES)
        except Exception as exc:  # a media port error must not end the call
            log.warning("ringback for leg %d not played: %s", handle, exc)
            return False
        self._tokens[(key, leg)] = token
        return True

    def stop(self, key: int, leg: int) -> bool:
        """Stop the tone of (call, leg); False when none plays."""
        token = self._tokens.pop((key, leg), None)
        if token is None:
            return False
        self.ports.stop(token)
        return True

    def call_ended(self, key: int) -> None:
        for call_key, leg in [k for k in self._tokens if k[0] == key]:
            self.stop(call_key, leg)

    def poll(self) -> None:
        if self.owns_ended:
            self.ports.ended()

    @property
    def playing(self) -> int:
        return len(self._tokens)

    def close(self) -> None:
        for key, leg in list(self._tokens):
            self.stop(key, leg)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


__all__ = ["CADENCES", "Ringback", "TonePorts"]
