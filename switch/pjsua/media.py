"""Prompts and recordings on pjsua2's conference bridge: players and recorders per leg.

Theory of operation
-------------------
A prompt is an ``AudioMediaPlayer`` (one file) or a playlist (prompt + beep), created
with ``PJMEDIA_FILE_NO_LOOP`` and connected to a leg's audio port; a voicemail is an
``AudioMediaRecorder`` fed by the caller's audio port. Everything here runs on the
endpoint thread, except :meth:`_Player.onEof2`, which pjmedia calls from the bridge's
clock thread: it only appends the player's token to a deque (``append`` is atomic
under the GIL) and returns; the player is destroyed later, on the endpoint thread
(pjsua2 forbids destroying it inside the callback).

A leg's audio port may not exist yet when a prompt is asked for (its media comes up
with the 200/ACK): the player then waits in ``_waiting`` and is connected by
:meth:`MediaPorts.media_changed`, which the endpoint calls from ``onCallMediaState``.
When a leg ends, its players are dropped and its recorder is closed (the WAV header
is written when the recorder is destroyed).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from switch.errors import MediaPortError

log = logging.getLogger("switch.pjsua")


@dataclass(frozen=True, slots=True)
class PromptEnded:
    """A player reached the end of its file (or playlist)."""

    handle: int
    token: int
    at: int


class _Player(pj.AudioMediaPlayer):  # type: ignore[misc]  # pjsua2 has no type information
    def __init__(self, token: int, ended: deque[tuple[int, int]]) -> None:
        super().__init__()
        self.token = token
        self._ended = ended

    def onEof2(self) -> None:  # pjsua2 callback, on the bridge's clock thread
        with contextlib.suppress(Exception):  # never raise into pjsua2
            self._ended.append((self.token, time.monotonic_ns()))


@dataclass(slots=True)
class _Playing:
    handle: int
    player: Any
    connected: bool = False


@dataclass(slots=True)
class _Recording:
    handle: int
    recorder: Any
    path: str


class MediaPorts:
    """Players and recorders attached to legs (see the module docstring)."""

    def __init__(
        self, audio_of: Callable[[int], Any | None], need_clock: Callable[[], None]
    ) -> None:
        self._audio_of = audio_of
        self._need_clock = need_clock  # before every connection (switch/pjsua/clock.py)
        self._tokens = itertools.count(1)
        self._playing: dict[int, _Playing] = {}
        self._recording: dict[int, _Recording] = {}
        self._ended: deque[tuple[int, int]] = deque()
        self._graveyard: list[Any] = []  # players ended in a callback: destroyed at next poll

    # ------------------------------------------------------------------ prompts

    def play(self, handle: int, files: Sequence[str]) -> int:
        """Play ``files`` once, in order, to leg ``handle``; returns the prompt's token."""
        token = next(self._tokens)
        player = _Player(token, self._ended)
        try:
            if len(files) == 1:
                player.createPlayer(files[0], pj.PJMEDIA_FILE_NO_LOOP)
            else:
                player.createPlaylist(list(files), f"prompt-{token}", pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as exc:
            raise MediaPortError(f"prompt {list(files)!r}: {exc.info()}") from None
        self._playing[token] = _Playing(handle, player)
        self._connect(token)
        return token

    def stop(self, token: int) -> None:
        playing = self._playing.pop(token, None)
        if playing is not None:
            self._disconnect(playing)
            self._graveyard.append(playing.player)

    def ended(self) -> list[PromptEnded]:
        """Prompts that reached their end since the last call; their players are freed."""
        self._graveyard.clear()  # destroyed here, on the endpoint thread, never in onEof2
        done: list[PromptEnded] = []
        while self._ended:
            token, at = self._ended.popleft()
            playing = self._playing.pop(token, None)
            if playing is None:
                continue  # stopped meanwhile
            self._disconnect(playing)
            self._graveyard.append(playing.player)
            done.append(PromptEnded(playing.handle, token, at))
        return done

    # ------------------------------------------------------------------ recordings

    def record(self, handle: int, path: str) -> None:
        """Record leg ``handle``'s incoming audio into ``path`` (8 kHz mono 16-bit WAV)."""
        if handle in self._recording:
            raise MediaPortError(f"leg {handle!r} is already being recorded")
        audio = self._audio_of(handle)
        if audio is None:
            raise MediaPortError(f"leg {handle!r} has no audio to record")
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
            self._need_clock()
            audio.startTransmit(recorder)
        except pj.Error as exc:
            raise MediaPortError(f"recording {path!r}: {exc.info()}") from None
        self._recording[handle] = _Recording(handle, recorder, path)

    def stop_recording(self, handle: int) -> str | None:
        """Close leg ``handle``'s recording; returns its path (None if there was none)."""
        recording = self._recording.pop(handle, None)
        if recording is None:
            return None
        audio = self._audio_of(handle)
        if audio is not None:
            try:
                audio.stopTransmit(recording.recorder)
            except pj.Error as exc:
                log.debug("leg %d: stop recording: %s", handle, exc.info())
        # Destroying the recorder writes the WAV header's lengths: do it now, here.
        del recording.recorder
        return recording.path

    # ------------------------------------------------------------------ endpoint hooks

    @property
    def in_use(self) -> bool:
        """A prompt or a recording is connected in the bridge (its clock must run)."""
        return bool(self._recording) or any(p.connected for p in self._playing.values())

    def media_changed(self, handle: int) -> None:
        for token, playing in list(self._playing.items()):
            if playing.handle == handle:
                playing.connected = False
                self._connect(token)

    def leg_ended(self, handle: int) -> None:
        for token, playing in list(self._playing.items()):
            if playing.handle == handle:
                self._playing.pop(token)
                self._graveyard.append(playing.player)
        self.stop_recording(handle)

    def close(self) -> None:
        for handle in list(self._recording):
            self.stop_recording(handle)
        self._playing.clear()
        self._graveyard.clear()

    # ------------------------------------------------------------------ helpers

    def _connect(self, token: int) -> None:
        playing = self._playing[token]
        if playing.connected:
            return
        audio = self._audio_of(playing.handle)
        if audio is None:
            return  # media_changed connects it once the leg's audio is up
        self._need_clock()
        try:
            playing.player.startTransmit(audio)
            playing.connected = True
        except pj.Error as exc:
            log.warning("leg %d: prompt not connected: %s", playing.handle, exc.info())

    def _disconnect(self, playing: _Playing) -> None:
        if not playing.connected:
            return
        audio = self._audio_of(playing.handle)
        if audio is None:
            return
        try:
            playing.player.stopTransmit(audio)
        except pj.Error as exc:
            log.debug("leg %d: prompt stop: %s", playing.handle, exc.info())


__all__ = ["MediaPorts", "PromptEnded"]
