"""Every string the console and the owner's page show has a German text (issue 18: German
first): the ``data-i18n`` keys of the HTML and the ``t("…")``/``fmt("…")`` calls of the
JavaScript are all in the catalogue the switch serves at /i18n/de.json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from switch import i18n

STATIC = Path(__file__).resolve().parents[3] / "switch" / "web" / "static"
PAGES = ("console.html", "owner.html", "console.js", "owner.js", "desk.js")
KEYS = re.compile(r'data-i18n(?:-placeholder)?="([^"]+)"|\b(?:t|fmt)\("([^"]+)"')
STATES = ("available", "away", "dnd", "busy", "offline")  # t(p.state) in desk.js


def keys_of(name: str) -> set[str]:
    text = (STATIC / name).read_text(encoding="utf-8")
    return {a or b for a, b in KEYS.findall(text)}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_string_has_a_german_text(name: str) -> None:
    german = i18n.catalogue("de")
    keys = keys_of(name)
    if name != "desk.js":
        assert keys, f"{name}: no translatable strings found (did the markup change?)"
    missing = sorted(k for k in keys if k not in german)
    assert missing == []


def test_presence_states_in_german() -> None:
    german = i18n.catalogue("de")
    assert [german.get(state) for state in STATES] == [
        "erreichbar",
        "abwesend",
        "nicht stören",
        "besetzt",
        "offline",
    ]
