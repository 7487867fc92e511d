"""German first, English on request: the message catalogues and the current language.

Theory of operation
-------------------
Source strings are English (``_("ring {who} for {seconds} s")``); the German texts live in
gettext catalogues, ``switch/locale/<lang>/LC_MESSAGES/rufweiche.po``, maintained with
Babel (``pybabel extract``/``update``). The ``.po`` file is compiled *in memory* the first
time a language is used (``babel.messages.pofile`` + ``mofile``): a fresh clone runs without
a build step, and no compiled artefact can be stale or missing.

The language of a piece of output is decided, first match wins, by

1. the command line (``rufweiche --lang en``) or the environment (``RUFWEICHE_LANG``);
2. the person (``language:`` in the users file) for pages and e-mails to them;
3. the dial plan (``language:``, :attr:`rules.model.PlanSpec.language`);
4. German (:data:`DEFAULT`).

:func:`using` sets the language of the current context (a :class:`contextvars.ContextVar`,
so concurrent requests never see each other's); :func:`_` translates in it. Dates and
times are formatted by Babel (``format_datetime(..., locale="de_DE")``).

The page's JavaScript gets the same catalogue as JSON (:func:`catalogue`), served by
the switch at ``/i18n/<lang>.json``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal, cast

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from switch.errors import UsageError

Language = Literal["de", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("de", "en")
DEFAULT: Final[Language] = "de"
ENV: Final = "RUFWEICHE_LANG"
DOMAIN: Final = "rufweiche"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
LOCALES: Final[dict[Language, str]] = {"de": "de_DE", "en": "en_GB"}

_current: contextvars.ContextVar[Language] = contextvars.ContextVar("language", default=DEFAULT)


def language(raw: str | None) -> Language | None:
    """``"de"``, ``"en"`` (also ``de_DE.UTF-8``, ``en-GB``), None for nothing; others refused."""
    if raw is None or not raw.strip():
        return None
    code = raw.strip().replace("-", "_").split("_", 1)[0].split(".", 1)[0].lower()
    if code not in LANGUAGES:
        raise UsageError(f"language {raw!r}: not one of {', '.join(LANGUAGES)}")
    return cast(Language, code)


def choose(*candidates: str | None) -> Language:
    """The first language given among ``candidates`` (request, person, plan), else the
    environment's ``RUFWEICHE_LANG``, else German."""
    for candidate in candidates:
        found = language(candidate)
        if found is not None:
            return found
    return language(os.environ.get(ENV)) or DEFAULT


def requested() -> Language | None:
    """The language the operator asked for (``RUFWEICHE_LANG``), None if not asked."""
    return language(os.environ.get(ENV))


@functools.cache
def translations(lang: Language) -> Translations:
    """The compiled catalogue of ``lang`` (English: the source strings themselves)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        return Translations()  # English: msgid is the text
    with po.open("rb") as source:
        catalog = read_po(source, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


@functools.cache
def catalogue(lang: Language) -> dict[str, str]:
    """msgid -> text of ``lang``, for the page's JavaScript (English: empty, ids are text)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        return {}
    with po.open("rb") as source:
        catalog = read_po(source, locale=lang, domain=DOMAIN)
    return {
        str(m.id): str(m.string)
        for m in catalog
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
    }


def current() -> Language:
    return _current.get()


@contextlib.contextmanager
def using(lang: Language) -> Iterator[Language]:
    """Translate into ``lang`` inside the block (this context only)."""
    token = _current.set(lang)
    try:
        yield lang
    finally:
        _current.reset(token)


def set_language(lang: Language) -> None:
    """Set the language for the rest of this context (the CLI, once per command)."""
    _current.set(lang)


def _(message: str) -> str:
    """``message`` in the current language."""
    return str(translations(_current.get()).gettext(message))


def ngettext(one: str, many: str, count: int) -> str:
    return str(translations(_current.get()).ngettext(one, many, count))


def gettext_in(lang: Language, message: str) -> str:
    return str(translations(lang).gettext(message))


def format_datetime(moment: dt.datetime, pattern: str | None = None) -> str:
    """``moment`` as people of the current language write it (German: ``25.05.2027, 10:00``)."""
    lang = _current.get()
    if pattern is None:
        pattern = "dd.MM.y, HH:mm" if lang == "de" else "d MMM y, HH:mm"
    return str(_babel_datetime(moment, pattern, locale=LOCALES[lang]))


def format_long(moment: dt.datetime) -> str:
    """``Dienstag, 25. Mai 2027, 10:00`` / ``Tuesday 25 May 2027, 10:00``."""
    lang = _current.get()
    pattern = "EEEE, d. MMMM y, HH:mm" if lang == "de" else "EEEE d MMMM y, HH:mm"
    return str(_babel_datetime(moment, pattern, locale=LOCALES[lang]))


def format_day(day: dt.date) -> str:
    lang = _current.get()
    return str(
        _babel_date(day, "EEE d. MMM" if lang == "de" else "EEE d MMM", locale=LOCALES[lang])
    )


__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "Language",
    "_",
    "catalogue",
    "choose",
    "current",
    "format_datetime",
    "format_long",
    "gettext_in",
    "language",
    "ngettext",
    "set_language",
    "using",
]
