"""Announcements as WAV files: recorded ones the owner drops in, or speech made locally.

Theory of operation
-------------------
pjsua2's ``AudioMediaPlayer`` plays WAV files; the conference bridge runs at 8 kHz
(switch/pjsua/endpoint.py), so every prompt is stored as 8 kHz mono 16-bit PCM and
plays without resampling. A prompt is named by a text:

* when ``var/announcements/<tenant>/<text>.wav`` exists (the text is then a *name*,
  e.g. ``betriebsferien``), that recording is played — the owner's own voice wins;
* otherwise the text is spoken by Debian's ``espeak-ng`` (``-v de``/``-v en``), brought
  to 8 kHz mono by ``sox``, and cached under ``var/announcements/.tts/<hash>.wav``,
  the hash taken over (voice, text). Nothing leaves the machine.

Speech synthesis takes 50–300 ms of CPU: far too long for the SIP thread. So
:class:`PromptCache` generates on a background thread (:meth:`PromptCache.prepare`,
called when dial plans load), and the call path only asks :meth:`PromptCache.ready`,
which looks at a dict and never blocks. A prompt that is not ready yet is not played
(the caller is told so by the worker's log, and the flow goes on).

Errors: :class:`AnnouncementError` (one tree for this module), raised by the blocking
generator; the background thread logs it and leaves the prompt unavailable.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import queue
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from switch.errors import AnnouncementError

log = logging.getLogger("switch.worker.announcements")

SAMPLE_RATE: Final = 8000
"""The conference bridge's clock rate (EndpointConfig): prompts play without resampling."""
VOICES: Final = frozenset({"de", "en"})
DEFAULT_VOICE: Final = "de"
TTS_DIR: Final = ".tts"
BEEP_NAME: Final = "beep-1khz-300ms.wav"
GENERATE_TIMEOUT_S: Final = 20.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Prompt:
    """What to play: ``text`` is spoken, or names a recording of the tenant."""

    tenant: str
    text: str
    voice: str = DEFAULT_VOICE


def cache_key(voice: str, text: str) -> str:
    """File stem of a spoken prompt: a hash over (voice, text), stable across runs."""
    digest = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()
    return f"{voice}-{digest[:24]}"


def is_name(text: str) -> bool:
    """Whether ``text`` could name a recording (a file stem, no path, no spaces)."""
    return bool(_NAME.match(text)) and ".." not in text


def wav_seconds(path: Path) -> float:
    """Length of a PCM WAV file in seconds (the ``wave`` module reads the header only)."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        return wav.getnframes() / rate if rate else 0.0


def write_tone(path: Path, *, hz: float = 1000.0, seconds: float = 0.3, level: float = 0.4) -> Path:
    """A sine tone as 8 kHz mono 16-bit WAV (the voicemail beep), written atomically."""
    frames = int(SAMPLE_RATE * seconds)
    ramp = int(SAMPLE_RATE * 0.005)  # 5 ms fade in/out: no click at the edges
    samples = []
    for n in range(frames):
        gain = min(1.0, n / ramp, (frames - 1 - n) / ramp) if ramp else 1.0
        value = level * gain * math.sin(2 * math.pi * hz * n / SAMPLE_RATE)
        samples.append(int(value * 32767))
    data = struct.pack(f"<{frames}h", *samples)
    _write_atomically(path, data)
    return path


RINGBACK_HZ = 425.0
"""The German ringback ("Freiton"): 425 Hz, 1 s on, 4 s off (ITU-T E.180 Suppl. 2)."""


def write_ringback(path: Path, *, level: float = 0.25) -> Path:
    """One ringback cadence (1 s of 425 Hz, 4 s of silence) as 8 kHz mono 16-bit WAV."""
    write_tone(path, hz=RINGBACK_HZ, seconds=1.0, level=level)
    with wave.open(str(path), "rb") as tone:
        frames = tone.readframes(tone.getnframes())
    _write_atomically(path, frames + b"\x00\x00" * (SAMPLE_RATE * 4))
    return path


MUSIC_NAME: Final = "wartemusik-v1.wav"
_CHORDS: Final = ((261.63, 329.63, 392.0), (220.0, 261.63, 329.63), (174.61, 220.0, 261.63))
_CHORDS_END: Final = ((196.0, 246.94, 293.66),)


def write_melody(path: Path, *, seconds: float = 20.0, level: float = 0.22) -> Path:
    """The bundled music on hold (issue 19): broken chords C, Am, F, G of soft plucked sine
    notes, made here (so free of any rights), 8 kHz mono 16-bit, written atomically."""
    note = 0.25
    per_note = int(SAMPLE_RATE * note)
    chords = _CHORDS + _CHORDS_END
    total = int(SAMPLE_RATE * seconds)
    samples: list[int] = []
    index = 0
    while len(samples) < total:
        chord = chords[(index // 8) % len(chords)]
        pattern = (0, 1, 2, 1, 0, 1, 2, 1)
        hz = chord[pattern[index % 8]] * (2 if index % 16 >= 8 else 1)
        for n in range(per_note):
            decay = math.exp(-3.0 * n / per_note)
            attack = min(1.0, n / 40)
            value = level * attack * decay * math.sin(2 * math.pi * hz * n / SAMPLE_RATE)
            samples.append(int(value * 32767))
        index += 1
    del samples[total:]
    _write_atomically(path, struct.pack(f"<{len(samples)}h", *samples))
    return path


def _write_atomically(path: Path, frames: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(frames)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Announcements:
    """Where prompts live under ``<data_dir>/announcements`` and how they are made.

    Blocking: :meth:`synthesize` runs two processes. Use it from a background thread
    (:class:`PromptCache`), never on the SIP thread.
    """

    def __init__(self, data_dir: Path, *, espeak: str = "espeak-ng", sox: str = "sox") -> None:
        self.root = data_dir / "announcements"
        self.espeak = espeak
        self.sox = sox

    def recorded(self, tenant: str, text: str) -> Path | None:
        """The owner's recording named ``text`` for ``tenant``, if there is one."""
        if not is_name(text) or not is_name(tenant):
            return None
        stem = text[:-4] if text.endswith(".wav") else text
        path = self.root / tenant / f"{stem}.wav"
        return path if path.is_file() else None

    def spoken_path(self, voice: str, text: str) -> Path:
        return self.root / TTS_DIR / f"{cache_key(voice, text)}.wav"

    def beep(self) -> Path:
        path = self.root / TTS_DIR / BEEP_NAME
        if not path.is_file():
            write_tone(path)
        return path

    def music(self, tenant: str, name: str) -> Path:
        """The owner's music on hold ``name`` if there is one, else the bundled melody."""
        recorded = self.recorded(tenant, name)
        if recorded is not None:
            return recorded
        path = self.root / TTS_DIR / MUSIC_NAME
        if not path.is_file():
            write_melody(path)
        return path

    def lookup(self, prompt: Prompt) -> Path | None:
        """A file for ``prompt`` that exists now (recording first, then the cache)."""
        recorded = self.recorded(prompt.tenant, prompt.text)
        if recorded is not None:
            return recorded
        spoken = self.spoken_path(prompt.voice, prompt.text)
        return spoken if spoken.is_file() else None

    def synthesize(self, voice: str, text: str) -> Path:
        """Speak ``text`` into the cache (espeak-ng, then sox to 8 kHz mono); blocking."""
        if voice not in VOICES:
            raise AnnouncementError(f"voice {voice!r} unknown: use one of {sorted(VOICES)}")
        if not text.strip():
            raise AnnouncementError("announcement text is empty")
        target = self.spoken_path(voice, text)
        if target.is_file():
            return target
        for tool in (self.espeak, self.sox):
            if shutil.which(tool) is None:
                raise AnnouncementError(
                    f"program {tool!r} not found: install Debian's espeak-ng and sox"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            raw = Path(tmp) / "raw.wav"
            out = Path(tmp) / "8k.wav"
            # "--" so that a text starting with "-" is never read as an option.
            self._run([self.espeak, "-v", voice, "-w", str(raw), "--", text], text)
            self._run(
                [self.sox, str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out)],
                text,
            )
            os.replace(out, target)
        return target

    @staticmethod
    def _run(argv: list[str], text: str) -> None:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=GENERATE_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AnnouncementError(f"program {argv[0]!r} failed: {exc}") from None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[-200:]
            raise AnnouncementError(f"program {argv[0]!r} exited {done.returncode}: {err!r}")


class PromptCache:
    """Prompts made ready off the call path; :meth:`ready` never blocks.

    One daemon thread takes prompts off a queue and synthesizes them. ``ready`` checks
    a dict first and the file system (a recording may appear at any time) second: one
    ``stat`` — cheap, but callers on the SIP thread should still ask once per call.
    """

    def __init__(self, announcements: Announcements) -> None:
        self.announcements = announcements
        self._ready: dict[tuple[str, str], Path] = {}
        self._failed: dict[tuple[str, str], str] = {}
        self._queue: queue.SimpleQueue[Prompt | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="prompts", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def prepare(self, prompts: Iterable[Prompt]) -> int:
        """Queue every prompt not ready yet; returns how many were queued."""
        queued = 0
        for prompt in prompts:
            if self.announcements.recorded(prompt.tenant, prompt.text) is not None:
                continue
            if (prompt.voice, prompt.text) in self._failed:
                continue
            with self._lock:
                self._pending += 1
                self._idle.clear()
            self._queue.put(prompt)
            queued += 1
        self.start()
        return queued

    def wait_idle(self, timeout: float) -> bool:
        """For tests and start-up: until the queue is worked off."""
        return self._idle.wait(timeout)

    def ready(self, prompt: Prompt) -> Path | None:
        """The file to play for ``prompt`` now, or None (queued for next time)."""
        recorded = self.announcements.recorded(prompt.tenant, prompt.text)
        if recorded is not None:
            return recorded
        path = self._ready.get((prompt.voice, prompt.text))
        if path is not None:
            return path
        spoken = self.announcements.spoken_path(prompt.voice, prompt.text)
        if spoken.is_file():  # made by an earlier run
            self._ready[(prompt.voice, prompt.text)] = spoken
            return spoken
        self.prepare([prompt])
        return None

    def failure(self, prompt: Prompt) -> str | None:
        return self._failed.get((prompt.voice, prompt.text))

    def _work(self) -> None:
        while True:
            prompt = self._queue.get()
            if prompt is None:
                return
            key = (prompt.voice, prompt.text)
            try:
                if (prompt.voice, prompt.text) not in self._ready:
                    path = self.announcements.synthesize(prompt.voice, prompt.text)
                    self._ready[(prompt.voice, prompt.text)] = path
            except AnnouncementError as exc:
                self._failed[key] = str(exc)
                log.warning("announcement for tenant=%s not made: %s", prompt.tenant, exc)
            except Exception:  # never let the thread die: later prompts still need it
                log.exception("announcement for tenant=%s failed", prompt.tenant)
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending <= 0:
                        self._pending = 0
                        self._idle.set()


__all__ = [
    "DEFAULT_VOICE",
    "RINGBACK_HZ",
    "SAMPLE_RATE",
    "VOICES",
    "Announcements",
    "Prompt",
    "PromptCache",
    "cache_key",
    "is_name",
    "wav_seconds",
    "write_tone",
]
