"""The forwardings file (issue 18): checked, persisted across a restart, told to listeners."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import load_plan_text
from switch.errors import ForwardingError
from switch.records.forwarding import FORWARDING_FILE, ForwardingStore, read_forwarding

PLAN = load_plan_text(
    'tenant: t\nname: T\nnumbers: ["+49 30 1234560"]\n'
    'people: {jan: {devices: {desk: "sip:jan@office"}}}\n'
    "rules: [{name: r, then: [{ring: jan}]}]\n",
    "<t>",
)


def test_set_check_persist_and_clear(tmp_path: Path) -> None:
    store = ForwardingStore(tmp_path)
    heard: list[tuple[object, ...]] = []
    store.listeners.append(lambda *args: heard.append(args))
    assert store.set_checked(PLAN, "jan", "0170 1234567", who="otto", source="web") == (
        "+491701234567"
    )
    assert ForwardingStore(tmp_path).snapshot("t") == {"jan": "+491701234567"}  # a restart
    with pytest.raises(ForwardingError) as refused:
        store.set_checked(PLAN, "jan", "0900 1234567", who="otto", source="web")
    assert refused.value.status == 403
    with pytest.raises(ForwardingError) as unknown:
        store.set_checked(PLAN, "eva", None, who="otto", source="web")
    assert unknown.value.status == 404
    assert store.set_checked(PLAN, "jan", None, who="otto", source="web") is None
    assert read_forwarding(tmp_path / FORWARDING_FILE) == {}
    assert heard == [
        ("t", "jan", "+491701234567", "otto", "web"),
        ("t", "jan", None, "otto", "web"),
    ]


def test_a_broken_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    (tmp_path / FORWARDING_FILE).write_text("[1]", encoding="utf-8")
    with pytest.raises(ForwardingError, match="not a map"):
        ForwardingStore(tmp_path)
    (tmp_path / FORWARDING_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ForwardingError, match="not readable"):
        read_forwarding(tmp_path / FORWARDING_FILE)
