"""The decision trace in German (issue 18): a pure mapping of rules/' English templates;
``--lang en`` shows the lines exactly as rules/ wrote them."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from rules import CallInfo, decide, load_dialplans
from rules.presence import PresenceState
from switch import cli
from switch.cli.tracetext import german, translate

REPO = Path(__file__).resolve().parents[3]
ENGLISH = re.compile(
    r"\b(is|not|rule|caller|called|match|rings|default|and|but|of|schedule|none|wanted)\b"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "call from anonymous to +4930123 at Tue 2027-05-25 10:00 CEST (Europe/Berlin)",
            "Anruf von anonym an +4930123 am Di 2027-05-25 10:00 CEST (Europe/Berlin)",
        ),
        ("rule 'no match': no conditions → match", "Regel 'no match': keine Bedingungen → passt"),
        (
            "rule 'x': Tue 10:00 is in Tue 07:00-12:00 of schedule 'o' and jan is away"
            " (wanted not dnd/offline) → no match",
            "Regel 'x': Di 10:00 liegt in Di 07:00-12:00 des Zeitplans 'o' und jan ist abwesend"
            " (verlangt nicht nicht stören/offline) → passt nicht",
        ),
        (
            "rule 'x': Tue 10:00 is in Tue 07:00-12:00 of schedule 'o', but 2027-05-27 is"
            " a public holiday (Fronleichnam) → no match",
            "Regel 'x': Di 10:00 liegt in Di 07:00-12:00 des Zeitplans 'o', aber 2027-05-27 ist"
            " ein Feiertag (Fronleichnam) → passt nicht",
        ),
        (
            "rule 'spam': none of: caller +4922 not in list 'spam'; caller +4922 not in"
            " number +4930 → no match",
            "Regel 'spam': nichts davon: Anrufer +4922 nicht in Liste 'spam'; Anrufer +4922"
            " nicht in Nummer +4930 → passt nicht",
        ),
        ("rule 'a': caller is anonymous → match", "Regel 'a': Anrufer ist anonym → passt"),
        (
            "rule 'a': caller +4922 is not anonymous → no match",
            "Regel 'a': Anrufer +4922 ist nicht anonym → passt nicht",
        ),
        (
            "rule 'e': only for calls to an extension → no match",
            "Regel 'e': nur für Anrufe an eine Durchwahl → passt nicht",
        ),
        (
            "rule 'e': called +4930 is the extension of eva → match",
            "Regel 'e': gewählt +4930 ist die Durchwahl von eva → passt",
        ),
        (
            "  the person rings jan.mobile (default device: Tue 18:00 is outside schedule 'o'"
            " (Mon 07:00-16:00))",
            "  the person klingelt bei jan.mobile (Standardgerät: Di 18:00 liegt außerhalb des"
            " Zeitplans 'o' (Mo 07:00-16:00))",
        ),
        (
            "  a step with no target left is skipped",
            "  ein Schritt ohne Ziel bleibt, wird übersprungen",
        ),
        ("jan is forwarded to +491701234567", "jan ist umgeleitet zu +491701234567"),
        (
            "no rule matched → reject 480 Temporarily Unavailable",
            "keine Regel passt → abweisen mit 480 Temporarily Unavailable",
        ),
        ("something new from a later rules/", "something new from a later rules/"),
    ],
)
def test_templates(line: str, expected: str) -> None:
    assert german(line) == expected
    assert translate(line, "en") == line


def unquoted(line: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", line)


def test_every_example_plan_traces_in_german_without_english_words_left() -> None:
    """The shipped dial plans at many moments and presences: every trace line is German."""
    plans = load_dialplans([REPO / "dialplans"])
    left: set[str] = set()
    count = 0
    for plan in plans:
        zone = ZoneInfo(plan.timezone)
        for day in range(24, 31):  # a week of May 2027, Pentecost and Fronleichnam nearby
            for hour in (3, 8, 10, 13, 18, 22):
                now = dt.datetime(2027, 5, day, hour, 5, tzinfo=zone)
                for presence in ({}, dict.fromkeys(plan.people, PresenceState.AWAY)):
                    for caller in (None, "+4922155501234"):
                        called = plan.numbers[0]
                        decision = decide(plan, CallInfo(called, caller), presence, now)
                        for line in decision.trace:
                            count += 1
                            if ENGLISH.search(unquoted(german(line))):
                                left.add(german(line))
    assert count > 1000
    assert not left, sorted(left)[:10]


def test_explain_says_why_in_german_and_english_as_before() -> None:
    plan = str(REPO / "dialplans" / "tischlerei-mueller.yaml")
    args = ["explain", plan, "--to", "+49 2331 987654-0", "--at", "2027-05-25 22:00"]
    german_out = CliRunner().invoke(cli.main, args, env={"RUFWEICHE_LANG": ""}).stdout
    english = CliRunner().invoke(cli.main, ["--lang", "en", *args]).stdout
    assert "  - Regel 'otherwise the service': keine Bedingungen → passt" in german_out
    assert "  - rule 'otherwise the service': no conditions → match" in english
