"""Media bypass (issue 16): whether a bridged call's RTP skips the pjsua2 bridge, and the SDP.

Theory of operation
-------------------
A forwarded call that needs no media service once it is bridged (the call flow emits
:class:`~switch.call.events.AnswerAndBridge` only after any welcome, confirm or whisper
prompt is over, and voicemail or announcements never bridge) does not need its audio
decoded, mixed and re-encoded by the pjsua2 conference bridge, which costs 20–160 ms
one-way (docs/performance.md). The worker keeps both dialogs but tells each side the
*other* side's media address: its 200 to the caller carries the callee's address, and a
re-INVITE to the callee carries the caller's. RTP then flows end to end (through
rtpengine where a leg leaves the host: the addresses the worker sees are rtpengine's).

This module is pure: :func:`choose` decides per call, :func:`media_address`,
:func:`audio_formats` and :func:`bypass_sdp` read and rewrite SDP text (RFC 4566).
The pjsua2 side (switch/pjsua/) applies the rewrite in ``Call.onCallSdpCreated``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TEL_EVENT = re.compile(r"^a=rtpmap:(\d+) telephone-event/8000", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class MediaAddress:
    """Where a side wants its audio: the first audio stream of its SDP."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Bypass:
    """The plan for one bypassed call: the one codec both sides speak (and DTMF events)."""

    caller_media: MediaAddress  # what the callee is told
    callee_media: MediaAddress  # what the caller is told
    formats: tuple[str, ...]  # RTP payload types kept in both SDPs


def _lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line]


def media_address(sdp: str) -> MediaAddress | None:
    """The address of the first audio stream (media-level ``c=`` before session-level)."""
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    in_audio = False
    for line in _lines(sdp):
        if line.startswith("m="):
            if port is not None:
                break  # the first audio stream is complete
            parts = line[2:].split()
            in_audio = len(parts) >= 3 and parts[0] == "audio"
            if in_audio:
                try:
                    port = int(parts[1])
                except ValueError:
                    return None
        elif line.startswith("c="):
            parts = line[2:].split()
            if len(parts) < 3:
                continue
            if port is None and not in_audio:
                session_host = parts[2].split("/")[0]
            elif in_audio:
                media_host = parts[2].split("/")[0]
    host = media_host or session_host
    if port is None or port == 0 or host is None or host == "0.0.0.0":
        return None
    return MediaAddress(host, port)


def audio_formats(sdp: str) -> list[str]:
    """The payload types of the first audio stream, in the order offered."""
    for line in _lines(sdp):
        if line.startswith("m=audio "):
            return line.split()[3:]
    return []


def telephone_event(sdp: str) -> str | None:
    match = _TEL_EVENT.search(sdp.replace("\r\n", "\n"))
    return match.group(1) if match else None


def may_bypass(enabled: bool, target_uri: str) -> bool:
    """Whether a call bridged to ``target_uri`` may leave the bridge at all.

    A transfer needs the worker to hear the transferor: a REFER is signalling (the worker
    pulls the media back into the bridge by re-INVITE, :meth:`SipEndpoint.unbridge`),
    but a DTMF code (``*2<number>#``, switch/call/transfer.py) travels in the RTP, which a
    bypassed call no longer sends through pjsua2. A ``tel:`` target (a mobile over the
    trunk) can only transfer by DTMF code, so its calls keep the bridge.
    """
    return enabled and not target_uri.startswith("tel:")


def choose(enabled: bool, caller_offer: str | None, callee_answer: str | None) -> Bypass | None:
    """Bypass this bridged call? Only when switched on, both SDPs name an address, and
    the codec the callee chose is one the caller offered (no transcoding without the
    bridge). RFC 4733 events pass only when both use the same payload type."""
    if not enabled or not caller_offer or not callee_answer:
        return None
    caller, callee = media_address(caller_offer), media_address(callee_answer)
    chosen = audio_formats(callee_answer)
    if caller is None or callee is None or not chosen:
        return None
    codec = chosen[0]
    if codec not in audio_formats(caller_offer) or not codec.isdigit() or int(codec) >= 96:
        return None  # a dynamic codec would need its rtpmap compared too: keep the bridge
    formats = [codec]
    event = telephone_event(callee_answer)
    if event is not None and event == telephone_event(caller_offer):
        formats.append(event)
    return Bypass(caller, callee, tuple(formats))


def bypass_sdp(local_sdp: str, peer: MediaAddress, formats: Sequence[str]) -> str:
    """``local_sdp`` (pjsua's own) pointing at ``peer``, offering only ``formats``.

    Every ``c=`` names the peer; the audio ``m=`` line gets its port and the formats; the
    attributes of other formats, ``a=rtcp`` (the peer's RTCP is its port + 1) and
    ``a=ssrc`` (pjsua's own stream, which sends nothing while bypassed) are dropped.
    """
    keep = set(formats)
    out: list[str] = []
    in_audio = False
    for line in _lines(local_sdp):
        if line.startswith("m="):
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio"
            if in_audio and len(parts) >= 3:
                line = f"m=audio {peer.port} {parts[2]} {' '.join(formats)}"
        elif line.startswith("c="):
            line = f"c=IN IP4 {peer.host}"
        elif in_audio and line.startswith(("a=rtcp:", "a=ssrc:", "a=ssrc-group:")):
            continue
        elif in_audio and line.startswith(("a=rtpmap:", "a=fmtp:")):
            pt = line.split(":", 1)[1].split(" ", 1)[0]
            if pt not in keep:
                continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


__all__ = [
    "Bypass",
    "MediaAddress",
    "audio_formats",
    "bypass_sdp",
    "choose",
    "may_bypass",
    "media_address",
    "telephone_event",
]
