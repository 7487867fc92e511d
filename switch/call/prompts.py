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


# Issue 19: what a caller waiting in a queue hears. Positions and waits are spoken from a
# small fixed set of texts, so that every prompt can be made in advance (queue_texts).
QUEUE_POSITION: Final = "Sie sind an Position {position} in der Warteschlange."
QUEUE_POSITION_MANY: Final = "Vor Ihnen warten noch mehr als zehn Anrufer."
QUEUE_WAIT_SHORT: Final = "Die Wartezeit beträgt weniger als eine Minute."
QUEUE_WAIT: Final = "Die Wartezeit beträgt etwa {minutes} Minuten."
QUEUE_WAIT_LONG: Final = "Die Wartezeit beträgt mehr als zehn Minuten."
QUEUE_CALLBACK_HINT: Final = "Wenn wir Sie zurückrufen sollen, drücken Sie die {digit}."
QUEUE_CALLBACK_TAKEN: Final = (
    "Vielen Dank. Wir rufen Sie zurück, sobald jemand frei ist. Auf Wiederhören."
)
QUEUE_MUSIC: Final = "wartemusik"
"""The name of the owner's music on hold (``announcements/<tenant>/wartemusik.wav``)."""
_MANY: Final = 10


def queue_announcement(
    position: int, expected_wait_s: float, callback_digit: str | None
) -> tuple[str, ...]:
    """The texts of one position announcement, in the order they are played."""
    if position > _MANY:
        where = QUEUE_POSITION_MANY
    else:
        where = QUEUE_POSITION.format(position=max(1, position))
    minutes = round(expected_wait_s / 60)
    if minutes < 1:
        wait = QUEUE_WAIT_SHORT
    elif minutes > _MANY:
        wait = QUEUE_WAIT_LONG
    else:
        wait = QUEUE_WAIT.format(minutes=minutes) if minutes > 1 else QUEUE_WAIT_ONE
    texts = [where, wait]
    if callback_digit:
        texts.append(QUEUE_CALLBACK_HINT.format(digit=callback_digit))
    return tuple(texts)


QUEUE_WAIT_ONE: Final = "Die Wartezeit beträgt etwa eine Minute."


def queue_texts(callback_digits: tuple[str, ...] = ("5",)) -> tuple[str, ...]:
    """Every text :func:`queue_announcement` can return, and the callback confirmation."""
    texts = [QUEUE_POSITION.format(position=n) for n in range(1, _MANY + 1)]
    texts += [QUEUE_POSITION_MANY, QUEUE_WAIT_SHORT, QUEUE_WAIT_ONE, QUEUE_WAIT_LONG]
    texts += [QUEUE_WAIT.format(minutes=n) for n in range(2, _MANY + 1)]
    texts += [QUEUE_CALLBACK_HINT.format(digit=d) for d in callback_digits]
    texts.append(QUEUE_CALLBACK_TAKEN)
    return tuple(texts)


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
    "QUEUE_CALLBACK_TAKEN",
    "QUEUE_MUSIC",
    "VOICEMAIL_GREETING",
    "WHISPER_PROMPT",
    "MediaOptions",
    "prompt_texts",
    "queue_announcement",
    "queue_texts",
]
