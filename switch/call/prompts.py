"""What the switch says: the German prompt texts and the media options of one call.

The texts are formatted with ``business`` (the plan's ``announce_as``); the worker's media
services make them into WAV files in advance (:func:`prompt_texts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ANONYMOUS: Final = "Anonym"
"""Shown to the callee in place of a withheld caller number."""

VOICEMAIL_GREETING: Final = (
    "{business}. Leider ist gerade niemand erreichbar. Bitte sprechen Sie nach dem Signalton."
)
NOBODY_THERE: Final = "{business}. Leider ist gerade niemand erreichbar."
CONFIRM_PROMPT: Final = "Anruf für {business}. Drücken Sie die 1, um das Gespräch anzunehmen."
WHISPER_PROMPT: Final = "Anruf für {business}."
DICTATION_PROMPT: Final = "Diktat. Bitte sprechen Sie nach dem Signalton."


@dataclass(frozen=True, slots=True)
class MediaOptions:
    """What the media services do for one call; ``CallFlow(media=None)`` has none.

    Without media services VOICEMAIL and ANNOUNCEMENT finals reject the caller and every
    answer counts as confirmed (the behaviour before issue 7).
    """

    voicemail_max_s: float = 120.0
    confirm_timeout_s: float = 10.0  # from the callee's 200 to its "1"
    whisper: bool = False  # the secretarial service hears the business name first
    prompt_guard_s: float = 300.0  # a prompt whose end is never reported is cut off
    welcome: str | None = None  # played as early media before the first step rings
    # The dictation box (issue 7) records as "dictation" after its own prompt.
    record_kind: str = "voicemail"
    greeting: str | None = None  # instead of VOICEMAIL_GREETING


def prompt_texts(business: str) -> tuple[str, ...]:
    """Every fixed prompt a call for ``business`` may play (for making them in advance)."""
    return tuple(
        text.format(business=business)
        for text in (VOICEMAIL_GREETING, NOBODY_THERE, CONFIRM_PROMPT, WHISPER_PROMPT)
    )


__all__ = [
    "ANONYMOUS",
    "CONFIRM_PROMPT",
    "DICTATION_PROMPT",
    "NOBODY_THERE",
    "VOICEMAIL_GREETING",
    "WHISPER_PROMPT",
    "MediaOptions",
    "prompt_texts",
]
