"""The decision trace ("Why:" of ``explain``) in German: a pure mapping of its templates.

rules/ writes its trace in English and stays so (pure, one language, tested line by line
in tests/rules). The CLI shows it in the reader's language: for German, :func:`german`
rewrites each line with the phrase table below. Names from the plan stay as written: a
line is cut at its quoted parts (``'office hours'``, repr of names) and only the text
between them is rewritten, so a rule called ``'no match'`` keeps its name.

Every template the trace uses is in :data:`PHRASES` (rules/trace.py, rules/conditions.py,
rules/plan.py, rules/days.py, rules/forwarding.py); tests/switch/cli/test_tracetext.py
checks a line of each. A line no phrase matches is shown as it is (English), never lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_DAYS: Final = {"Mon": "Mo", "Tue": "Di", "Wed": "Mi", "Thu": "Do", "Fri": "Fr", "Sat": "Sa",
                "Sun": "So"}  # fmt: skip
_STATES: Final = {
    "available": "erreichbar",
    "away": "abwesend",
    "busy": "besetzt",
    "dnd": "nicht stören",
    "offline": "offline",
}
_STATE: Final = "(available|away|busy|dnd|offline)"


def _states(text: str) -> str:
    words = re.sub(_STATE, lambda m: _STATES[m.group(1)], text)
    return re.sub(r"\bnot ", "nicht ", words)


def _presence(match: re.Match[str]) -> str:
    """``jan is away (wanted not dnd/offline)`` -> ``jan ist abwesend (verlangt nicht …)``."""
    who, state, wanted = match.group(1), match.group(2), match.group(3)
    text = f"{who} ist {_STATES[state]}"
    return text if wanted is None else f"{text} (verlangt {_states(wanted)})"


# (pattern, replacement), applied in order to the unquoted text of a line. Longer phrases
# first, so that a short one ("is") never eats part of a longer one.
PHRASES: Final[tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^call from anonymous to ", "Anruf von anonym an "),
        (r"^call from (\S+) to ", r"Anruf von \1 an "),
        (r"^(Anruf von \S+ an \S+) at ", r"\1 am "),
        (r"no rule matched → reject", "keine Regel passt → abweisen mit"),
        (
            r"note: the presence snapshot changed after the decision \(",
            "Hinweis: die Anwesenheit hat sich nach der Entscheidung geändert (",
        ),
        (
            r" was decided\); the lines above describe the changed snapshot",
            " war entschieden); die Zeilen oben beschreiben die geänderte Anwesenheit",
        ),
        (r"^no rule$", "keine Regel"),
        (r"^rule ", "Regel "),
        (r"only for calls to an extension", "nur für Anrufe an eine Durchwahl"),
        (
            r"only for calls to a main number, not an extension",
            "nur für Anrufe an eine Hauptnummer, keine Durchwahl",
        ),
        (r" → no match$", " → passt nicht"),
        (r" → match$", " → passt"),
        (r"^: no conditions", ": keine Bedingungen"),
        (r"^no conditions", "keine Bedingungen"),
        (r"(^|: |; |\()none of: ", r"\1nichts davon: "),
        (r"not \(", "nicht ("),
        (r" is outside schedule ", " liegt außerhalb des Zeitplans "),
        (r" is in (.+?) of schedule ", r" liegt in \1 des Zeitplans "),
        (r", but (\S+) is ", r", aber \1 ist "),
        (r"caller is anonymous, not in ", "Anrufer ist anonym, nicht in "),
        (r"caller is anonymous", "Anrufer ist anonym"),
        (r"caller (\S+) is not anonymous", r"Anrufer \1 ist nicht anonym"),
        (r"caller (\S+) is in ", r"Anrufer \1 ist in "),
        (r"caller (\S+) not in ", r"Anrufer \1 nicht in "),
        (r"\blist $", "Liste "),
        (r"\blist (?=')", "Liste "),
        (r"\bnumber (\+?\d)", r"Nummer \1"),
        (r"\bprefix (\+?\d)", r"Vorwahl \1"),
        (r"called (\S+) is one of ", r"gewählt \1 ist eine von "),
        (r"called (\S+) is not one of ", r"gewählt \1 ist keine von "),
        (
            r"called (\S+) is not an extension, nobody to ring",
            r"gewählt \1 ist keine Durchwahl, niemand klingelt",
        ),
        (
            r"called (\S+) is not an extension: no callee",
            r"gewählt \1 ist keine Durchwahl: niemand angerufen",
        ),
        (r"called (\S+) is not an extension", r"gewählt \1 ist keine Durchwahl"),
        (r"called (\S+) is the extension of ", r"gewählt \1 ist die Durchwahl von "),
        (r" has no device ", " hat kein Gerät "),
        (
            r"^(\s*)a step with no target left is skipped",
            r"\1ein Schritt ohne Ziel bleibt, wird übersprungen",
        ),
        (r" rings (\S+) \(default device: ", r" klingelt bei \1 (Standardgerät: "),
        (r" rings (\S+) \(default device\)", r" klingelt bei \1 (Standardgerät)"),
        (r" rings (\S+) \(always\)", r" klingelt bei \1 (immer)"),
        (r" rings (\S+) \(", r" klingelt bei \1 ("),
        (r"^(\S+) is forwarded to ", r"\1 ist umgeleitet zu "),
        (r"(\d{4}-\d\d-\d\d) is not a public holiday", r"\1 ist kein Feiertag"),
        (r"(\d{4}-\d\d-\d\d) is not closed", r"\1 ist kein Schließtag"),
        (r"(\d{4}-\d\d-\d\d) is not in a vacation", r"\1 ist nicht in den Ferien"),
        (r"(\d{4}-\d\d-\d\d) is not in ", r"\1 ist nicht in "),
        (r"(\d{4}-\d\d-\d\d) is in ", r"\1 ist in "),
        (r"(\d{4}-\d\d-\d\d) is ", r"\1 ist "),
        (r"a public holiday \(", "ein Feiertag ("),
        (r"a closed day", "ein Schließtag"),
        (r"in the vacation $", "in den Ferien "),
        (r"(\S+) is " + _STATE + r"(?: \(wanted ([^)]*)\))?", _presence),
        (r" and ", " und "),
        (r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b", lambda m: _DAYS[m.group(1)]),
    )
)


def _segment(text: str) -> str:
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    return text


def german(line: str) -> str:
    """One trace line in German; quoted names from the plan stay as they are."""
    out: list[str] = []
    last = 0
    for match in _QUOTED.finditer(line):
        out.append(_segment(line[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_segment(line[last:]))
    return "".join(out)


def translate(line: str, language: str) -> str:
    """The line in ``language`` ("en": as rules/ wrote it)."""
    return line if language == "en" else german(line)


__all__ = ["PHRASES", "german", "translate"]
