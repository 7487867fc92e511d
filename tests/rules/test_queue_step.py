"""The queue step of a dial plan (issue 19): ``{queue: name}``, then overflow."""

from __future__ import annotations

from rules import FinalKind
from tests.rules.helpers import at, plan, problems, run

MONDAY = at(2026, 12, 7)


def test_a_queue_step_waits_in_the_queue_and_the_rest_is_its_overflow() -> None:
    p = plan(
        "rules:\n"
        "  - name: r\n"
        "    then: [{ring: jan.desk, timeout: 10}, {queue: heimbuero}, voicemail]\n"
    )
    decision = run(p, MONDAY)
    first, second = decision.steps
    assert first.queue is None
    assert [t.ref for t in first.targets] == ["jan.desk"]
    assert second.queue == "heimbuero"
    assert second.targets == ()
    assert decision.final.kind is FinalKind.VOICEMAIL


def test_a_queue_step_names_its_queue_and_nothing_else() -> None:
    found = problems("rules:\n  - {name: r, then: [{queue: heimbuero, timout: 3}]}\n")
    assert any("unknown key 'timout'" in p for p in found)
    found = problems("rules:\n  - {name: r, then: [{queue: 'two words'}]}\n")
    assert any("queue" in p for p in found)
