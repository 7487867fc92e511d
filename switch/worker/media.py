"""Media services in the worker: carries out the call flow's prompt and recording commands.

Theory of operation
-------------------
The call flow (switch/call/callflow.py) says *what* to play or record; this module finds
the file and drives the endpoint's players and recorders (switch/pjsua/media.py), all
on the worker's SIP thread. It never makes a prompt on that thread: prompts are made
by :class:`~switch.worker.announcements.PromptCache` in the background when the dial plans
load (:meth:`MediaServices.prepare`); a prompt that is not ready is skipped, and the
flow is told at once (``PlaybackDone(played=False)``) so that it never waits for it.

Voicemail files are ``<data_dir>/voicemail/<tenant>/<UTC date-time>-<call id>.wav``.
When a recording stops, the worker's supervisor gets a ``voicemail`` control message
(tenant, call id, caller, path, seconds, time); the supervisor keeps the record and
publishes the MQTT notification (switch/supervisor/voicemail.py).
"""

from __future__ import annotations

import logging
import re
import time
import wave
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rules.decision import FinalKind
from switch.call.events import (
    CALLER,
    Command,
    Event,
    PlaybackDone,
    PlayMusic,
    PlayPrompt,
    RecordCaller,
    StopPlayback,
    StopRecording,
)
from switch.call.prompts import DICTATION_PROMPT, MediaOptions, prompt_texts, queue_texts
from switch.control import messages as control
from switch.worker.announcements import (
    DEFAULT_VOICE,
    VOICES,
    Announcements,
    Prompt,
    PromptCache,
)

log = logging.getLogger("switch.worker.media")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MEDIA_COMMANDS = (PlayPrompt, StopPlayback, RecordCaller, StopRecording, PlayMusic)
RECORD_KINDS = ("voicemail", "dictation")


class Ports(Protocol):
    """What this module needs of switch.pjsua.media.MediaPorts (a fake in unit tests)."""

    def play(self, handle: int, files: list[str]) -> int: ...
    def stop(self, token: int) -> None: ...
    def ended(self) -> list[Any]: ...  # PromptEnded(handle, token, at)
    def record(self, handle: int, path: str) -> None: ...
    def stop_recording(self, handle: int) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TenantMedia:
    """A tenant's media settings: the plan's ``media:`` keys, or these defaults."""

    voice: str = DEFAULT_VOICE
    voicemail_max_s: float = 120.0
    confirm_timeout_s: float = 10.0
    whisper: bool = False
    welcome: str | None = None
    dictation_code: str = "*50"
    dictation_max_s: float = 600.0

    def options(self) -> MediaOptions:
        return MediaOptions(
            voicemail_max_s=self.voicemail_max_s,
            confirm_timeout_s=self.confirm_timeout_s,
            whisper=self.whisper,
            welcome=self.welcome,
        )

    def dictation_options(self) -> MediaOptions:
        """The dictation box: its prompt and beep, then a recording filed as "dictation"."""
        return MediaOptions(
            voicemail_max_s=self.dictation_max_s,
            record_kind="dictation",
            greeting=DICTATION_PROMPT,
        )


def tenant_media(plan: Any) -> TenantMedia:
    """The media settings of a compiled dial plan (``plan.spec.media`` when the plan has it)."""
    spec = getattr(getattr(plan, "spec", None), "media", None)
    if spec is None:
        return TenantMedia()
    voice = str(getattr(spec, "voice", DEFAULT_VOICE))
    return TenantMedia(
        voice=voice if voice in VOICES else DEFAULT_VOICE,
        voicemail_max_s=float(getattr(spec, "voicemail_max", 120.0)),
        confirm_timeout_s=float(getattr(spec, "confirm_timeout", 10.0)),
        whisper=bool(getattr(spec, "whisper", False)),
        welcome=getattr(spec, "welcome", None) or None,
        dictation_code=str(getattr(spec, "dictation_code", "*50")),
        dictation_max_s=float(getattr(spec, "dictation_max", 600.0)),
    )


def plan_prompts(plan: Any) -> list[Prompt]:
    """Every prompt a plan can play: its announcements and the fixed prompts it uses.

    Only what the plan's rules can reach is made: synthesis costs CPU at start, in every
    worker, and a plan without voicemail or confirmation needs none of it.
    """
    media = tenant_media(plan)
    tenant = str(plan.tenant)
    greeting, nobody, confirm, whisper = prompt_texts(str(plan.announce_as))
    texts = [whisper] if media.whisper else []
    if media.welcome:
        texts.append(media.welcome)
    rules = list(getattr(plan, "rules", ()))
    for extension in getattr(plan, "extensions", {}).values():
        rules.extend(getattr(extension, "rules", ()))
    for rule in rules:
        if any(getattr(step, "confirm", False) for step in getattr(rule, "steps", ())):
            texts.append(confirm)
        final = getattr(rule, "final", None)
        if final is None:
            continue
        if final.kind is FinalKind.VOICEMAIL:
            texts.append(greeting)
        elif final.kind is FinalKind.ANNOUNCEMENT:
            texts.append(final.announcement or nobody)
    if getattr(plan, "people", None):  # someone may dial the dictation box
        texts.append(DICTATION_PROMPT)
    if any(getattr(step.static, "queue", None) for rule in rules for step in rule.steps):
        texts.extend(queue_texts())  # issue 19: position and wait announcements
    return [Prompt(tenant, text, media.voice) for text in dict.fromkeys(texts)]


CLOSE_WAIT_NS = 3_000_000_000
"""How long a stopped recording may take to be closed by pjmedia before it is reported anyway."""


def _complete_wav_seconds(path: Path) -> float | None:
    """Length of a WAV whose header has been finalised (its data size filled in), else None."""
    try:
        size = path.stat().st_size
        with wave.open(str(path), "rb") as wav:
            frames, width = wav.getnframes(), wav.getsampwidth()
            rate = wav.getframerate()
    except (OSError, EOFError, wave.Error):
        return None
    if rate <= 0 or (frames == 0 and size > 64) or frames * width < size - 4096:
        return None  # the writer has not put the final lengths into the header yet
    return frames / rate


def voicemail_path(
    data_dir: Path, tenant: str, call_id: str, when: datetime, kind: str = "voicemail"
) -> Path:
    stamp = when.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    safe_id = _UNSAFE.sub("_", call_id)[:80] or "call"
    folder = kind if kind in RECORD_KINDS else "voicemail"
    return data_dir / folder / _UNSAFE.sub("_", tenant) / f"{stamp}-{safe_id}.wav"


@dataclass(slots=True)
class _Recording:
    tenant: str
    call_id: str
    caller: str | None
    called: str
    path: Path
    handle: int
    started_wall: float
    stopped_ns: int = 0
    kind: str = "voicemail"
    person: str | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a media command needs to know of its call (filled in by the worker)."""

    key: int
    tenant: str
    call_id: str
    caller: str | None
    called: str
    caller_handle: int
    handles: Mapping[int, int]  # outbound leg -> endpoint handle
    person: str | None = None  # who dictates (the dictation box), from his device


class MediaServices:
    """Prompts and voicemail for the calls of one worker (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        ports: Ports,
        send: Callable[[control.FromWorker], None],
        *,
        prompts: PromptCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.send = send
        self.prompts = prompts or PromptCache(Announcements(data_dir))
        self._clock = clock
        self._tenants: dict[str, TenantMedia] = {}
        self._playing: dict[int, tuple[int, int]] = {}  # token -> (call key, leg)
        self._tokens: dict[tuple[int, int], int] = {}  # (call key, leg) -> token
        self._recordings: dict[int, _Recording] = {}  # call key -> recording
        self._closing: list[_Recording] = []  # stopped, WAV header not written yet
        self._beep: str | None = None

    # ------------------------------------------------------------------ plans

    def prepare(self, plans: Iterable[Any]) -> int:
        """Note each tenant's settings and make its prompts in the background."""
        prompts: list[Prompt] = []
        for plan in plans:
            self._tenants[str(plan.tenant)] = tenant_media(plan)
            prompts.extend(plan_prompts(plan))
        try:
            self._beep = str(self.prompts.announcements.beep())
            self.prompts.announcements.music("", "")  # issue 19: the bundled melody, once
        except OSError as exc:
            log.warning("voicemail beep not written: %s", exc)
        return self.prompts.prepare(prompts)

    def options(self, tenant: str) -> MediaOptions:
        return self._tenants.get(tenant, TenantMedia()).options()

    # ------------------------------------------------------------------ commands

    @staticmethod
    def handles(command: Command) -> bool:
        return isinstance(command, MEDIA_COMMANDS)

    def carry_out(self, call: CallContext, command: Command) -> list[Event]:
        """Carry out one media command; returns events to feed back (after the batch)."""
        if isinstance(command, PlayPrompt):
            return self._play(call, command)
        if isinstance(command, PlayMusic):
            return self._play_music(call, command)
        if isinstance(command, StopPlayback):
            token = self._tokens.pop((call.key, command.leg), None)
            if token is not None:
                self._playing.pop(token, None)
                self.ports.stop(token)
        elif isinstance(command, RecordCaller):
            self._record(call, command.kind)
        elif isinstance(command, StopRecording):
            self._stop_recording(call.key)
        return []

    @property
    def active(self) -> bool:
        """A prompt plays, or a recording runs or is being closed: someone must look at
        :meth:`ended` soon (the bridge's clock thread does not wake the SIP poll)."""
        return bool(self._playing or self._recordings or self._closing)

    def ended(self) -> list[tuple[int, Event]]:
        """PlaybackDone events for prompts that reached their end, by call key."""
        if self._closing:
            self._report_closed()
        events: list[tuple[int, Event]] = []
        for prompt in self.ports.ended():
            entry = self._playing.pop(prompt.token, None)
            if entry is None:
                continue
            key, leg = entry
            self._tokens.pop((key, leg), None)
            events.append((key, PlaybackDone(leg, prompt.at)))
        return events

    def call_ended(self, key: int) -> None:
        """The call is gone: forget its prompts; a recording still open is reported."""
        for (call_key, leg), token in list(self._tokens.items()):
            if call_key == key:
                self._tokens.pop((call_key, leg))
                self._playing.pop(token, None)
        self._stop_recording(key)

    # ------------------------------------------------------------------ helpers

    def _play_music(self, call: CallContext, command: PlayMusic) -> list[Event]:
        """Music on hold for a caller waiting in a queue (issue 19), once; the flow loops."""
        try:
            path = self.prompts.announcements.music(call.tenant, command.name)
            token = self.ports.play(call.caller_handle, [str(path)])
        except Exception as exc:
            log.warning("call %s tenant=%s: music failed: %s", call.call_id, call.tenant, exc)
            return [PlaybackDone(CALLER, time.monotonic_ns(), played=False)]
        self._playing[token] = (call.key, CALLER)
        self._tokens[(call.key, CALLER)] = token
        return []

    def _play(self, call: CallContext, command: PlayPrompt) -> list[Event]:
        handle = call.caller_handle if command.leg == CALLER else call.handles.get(command.leg)
        voice = self._tenants.get(call.tenant, TenantMedia()).voice
        files = []
        for text in (command.text, *command.then):  # issue 19: several texts as one prompt
            path = self.prompts.ready(Prompt(call.tenant, text, voice))
            if path is not None:
                files.append(str(path))
        if command.beep and self._beep is not None:
            files.append(self._beep)
        if handle is None or not files:
            log.warning(
                "call %s tenant=%s: prompt %r not ready, skipped",
                call.call_id,
                call.tenant,
                command.text[:40],
            )
            return [PlaybackDone(command.leg, time.monotonic_ns(), played=False)]
        try:
            token = self.ports.play(handle, files)
        except Exception as exc:
            log.warning("call %s tenant=%s: prompt failed: %s", call.call_id, call.tenant, exc)
            return [PlaybackDone(command.leg, time.monotonic_ns(), played=False)]
        self._playing[token] = (call.key, command.leg)
        self._tokens[(call.key, command.leg)] = token
        return []

    def _record(self, call: CallContext, kind: str = "voicemail") -> None:
        started = self._clock()
        path = voicemail_path(
            self.data_dir, call.tenant, call.call_id, datetime.fromtimestamp(started, UTC), kind
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.ports.record(call.caller_handle, str(path))
        except Exception as exc:
            log.error(
                "call %s tenant=%s: voicemail not recorded: %s", call.call_id, call.tenant, exc
            )
            return
        self._recordings[call.key] = _Recording(
            call.tenant,
            call.call_id,
            call.caller,
            call.called,
            path,
            call.caller_handle,
            started,
            kind=kind,
            person=call.person,
        )
        log.info("call %s tenant=%s: recording %s", call.call_id, call.tenant, kind)

    def _stop_recording(self, key: int) -> None:
        recording = self._recordings.pop(key, None)
        if recording is None:
            return
        self.ports.stop_recording(recording.handle)
        # pjmedia removes a conference port asynchronously (on the bridge's clock thread,
        # PJSIP 2.14+): the file is complete only a few milliseconds later. Report it from
        # the loop once it is, rather than wait here on the SIP thread.
        recording.stopped_ns = time.monotonic_ns()
        self._closing.append(recording)
        self._report_closed()

    def _report_closed(self) -> None:
        now = time.monotonic_ns()
        for recording in list(self._closing):
            seconds = _complete_wav_seconds(recording.path)
            waited = now - recording.stopped_ns
            if seconds is None and waited < CLOSE_WAIT_NS:
                continue
            self._closing.remove(recording)
            if seconds is None:
                log.error("call %s: voicemail file unreadable", recording.call_id)
            self._report(recording, seconds or 0.0)

    def _report(self, recording: _Recording, seconds: float) -> None:
        log.info(
            "call %s tenant=%s: voicemail of %.1f s", recording.call_id, recording.tenant, seconds
        )
        self.send(
            control.VoicemailFiled(
                kind=recording.kind,
                person=recording.person,
                tenant=recording.tenant,
                call_id=recording.call_id,
                caller=recording.caller,
                called=recording.called,
                path=str(recording.path),
                seconds=round(seconds, 3),
                started_wall=recording.started_wall,
            )
        )


__all__ = [
    "CallContext",
    "MediaServices",
    "TenantMedia",
    "plan_prompts",
    "tenant_media",
    "voicemail_path",
]
