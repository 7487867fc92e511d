"""The supervisor's queue service (switch/supervisor/queues.py) with a fake clock and a
recording ``send``: which worker is told what, and the figures it keeps."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from switch.access.policy import Scope
from switch.control import messages as control
from switch.supervisor.queuemetrics import QueueMetrics
from switch.supervisor.queues import QueueService, QueueSpec
from switch.web.dashboard import narrow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(**spec: object) -> tuple[QueueService, list[tuple[str, control.ToWorker]], Clock]:
    sent: list[tuple[str, control.ToWorker]] = []

    async def send(worker: str, message: control.ToWorker) -> None:
        sent.append((worker, message))

    members = {"anna": {"uri": "sip:anna@office", "user": "201"}}
    specs = {"hb": QueueSpec.model_validate({"members": members, **spec})}
    clock = Clock()
    return QueueService(specs, send, QueueMetrics(CollectorRegistry()), clock=clock), sent, clock


async def test_join_offers_the_member_and_tells_the_others_their_place() -> None:
    svc, sent, clock = service(wrapup=5)
    await svc.on_message("w1", control.QueueJoin("hb", "c1", "t"))
    await svc.on_message("w2", control.QueueJoin("hb", "c2", "t"))
    assert ("w1", control.QueueOffer("c1", "anna", "sip:anna@office", "hb.anna", 15.0)) in sent
    assert ("w2", control.QueueUpdate("c2", 2, 240.0, "5")) in sent
    sent.clear()
    await svc.on_message("w1", control.QueueResult("hb", "c1", "anna", answered=True))
    assert ("w2", control.QueueUpdate("c2", 1, 120.0, "5")) in sent
    clock.now += 30
    svc.call_ended("c1")
    await svc.dispatch()
    assert not any(isinstance(m, control.QueueOffer) for _, m in sent)  # wrap-up
    clock.now += 5
    await svc.dispatch()
    assert ("w2", control.QueueOffer("c2", "anna", "sip:anna@office", "hb.anna", 15.0)) in sent
    figures = svc.snapshot()["queues"]["hb"]["figures"]
    assert figures["by_tenant"]["t"]["answered"] == 1
    assert figures["average_handle_s"] == 30.0


async def test_unknown_full_and_max_wait_give_up() -> None:
    svc, sent, clock = service(max_length=1, max_wait=60)
    await svc.member_action("201", "pause")
    await svc.on_message("w1", control.QueueJoin("nope", "x", "t"))
    await svc.on_message("w1", control.QueueJoin("hb", "c1", "t"))
    await svc.on_message("w1", control.QueueJoin("hb", "c2", "t"))
    assert ("w1", control.QueueGiveUp("x", "unknown")) in sent
    assert ("w1", control.QueueGiveUp("c2", "full")) in sent
    clock.now += 60
    await svc.dispatch()
    assert ("w1", control.QueueGiveUp("c1", "max_wait")) in sent
    by_tenant = svc.snapshot()["queues"]["hb"]["figures"]["by_tenant"]["t"]
    assert (by_tenant["overflow"], by_tenant["refused"]) == (1, 1)
    text = generate_latest(svc.metrics.registry).decode()
    assert 'rufweiche_queue_calls_total{queue="hb",result="overflow",tenant="t"} 1.0' in text


async def test_callback_abandon_and_a_lost_worker() -> None:
    svc, _sent, _clock = service()
    await svc.member_action("201", "pause")
    for n, worker in enumerate(("w1", "w2", "w1")):
        await svc.on_message(worker, control.QueueJoin("hb", f"c{n}", "t"))
    await svc.on_message("w1", control.QueueCallback("hb", "c0", "t", "+49171"))
    svc.call_ended("c1", "abandoned")
    assert svc.worker_lost("w1") == 1
    snap = svc.snapshot()
    assert snap["callbacks"][0]["number"] == "+49171"
    assert snap["callbacks"][0]["state"] == "waiting"  # anna pauses: nobody to call back
    figures = snap["queues"]["hb"]["figures"]["by_tenant"]["t"]
    assert (figures["callback"], figures["abandoned"], figures["aborted"]) == (1, 1, 1)
    assert svc.member_states() == {"anna": {"hb": "paused"}}


async def test_member_codes_and_http_set_states() -> None:
    svc, _sent, _clock = service()
    assert await svc.member_action("nobody", "pause") == []
    assert await svc.set_member("hb", "anna", "logout") == "logged_out"
    with pytest.raises(ValueError, match="member state"):
        await svc.set_member("hb", "anna", "dance")


async def test_a_tenant_sees_only_its_own_waiting_callers_on_the_dashboard() -> None:
    svc, _sent, _clock = service()
    await svc.member_action("201", "pause")
    await svc.on_message("w1", control.QueueJoin("hb", "c1", "mine"))
    await svc.on_message("w1", control.QueueJoin("hb", "c2", "theirs"))
    snapshot = {"active_calls": [], "presence": {}, "today": [], **svc.snapshot()}
    scoped = narrow(snapshot, Scope(frozenset({"mine"})))
    assert [w["tenant"] for w in scoped["queues"]["hb"]["waiting"]] == ["mine"]


async def test_a_member_on_another_call_is_skipped_until_it_ends() -> None:
    svc, sent, _clock = service()
    svc.call_answered("direct", "sip:anna@office")  # someone rang anna's desk directly
    await svc.on_message("w1", control.QueueJoin("hb", "c1", "t"))
    assert not any(isinstance(m, control.QueueOffer) for _, m in sent)
    assert svc.member_states() == {"anna": {"hb": "busy"}}
    svc.call_ended("direct")
    await svc.dispatch()
    assert any(isinstance(m, control.QueueOffer) for _, m in sent)


def test_plans_naming_an_undefined_queue_are_reported() -> None:
    from rules import DialPlanSet, load_plan_text

    plan = load_plan_text(
        'tenant: t\nname: T\nnumbers: ["+49 30 1234560"]\n'
        "rules:\n  - {name: q, then: [{queue: hb}, {queue: other}]}\n",
        "<test>",
    )
    svc, _sent, _clock = service()
    assert svc.check_plans(DialPlanSet([plan])) == [
        "tenant t names queue 'other', which the settings do not define"
    ]


async def test_a_caller_ended_by_the_worker_counts_as_aborted() -> None:
    svc, _sent, _clock = service()
    await svc.member_action("201", "pause")
    await svc.on_message("w1", control.QueueJoin("hb", "c1", "t"))
    svc.call_ended("c1", "aborted")  # the worker stopped (Shutdown)
    figures = svc.snapshot()["queues"]["hb"]["figures"]["by_tenant"]["t"]
    assert (figures["aborted"], figures["abandoned"]) == (1, 0)


async def test_a_callback_keeps_the_place_and_is_placed_when_a_member_is_free() -> None:
    svc, sent, clock = service(wrapup=5)
    await svc.member_action("201", "pause")
    await svc.on_message("w1", control.QueueJoin("hb", "c1", "t"))
    await svc.on_message("w2", control.QueueJoin("hb", "c2", "t"))
    await svc.on_message("w1", control.QueueCallback("hb", "c1", "t", "+49171"))
    waiting = svc.snapshot()["queues"]["hb"]["waiting"]
    assert [(w["call_id"], w["callback"]) for w in waiting] == [("cb-1", True), ("c2", False)]
    sent.clear()
    await svc.member_action("201", "unpause")
    # first in line is the callback: the worker that took it rings anna, then the caller
    call_back = control.QueueCallBack("hb", "cb-1", "t", "+49171", "anna", "sip:anna@office", 15)
    assert sent == [("w1", call_back)]
    assert svc.snapshot()["callbacks"][0]["state"] == "ringing"
    await svc.on_message("w1", control.QueueResult("hb", "cb-1", "anna", answered=False))
    assert sent.count(("w1", call_back)) == 2  # offered again (she is the only member)
    await svc.on_message("w1", control.QueueResult("hb", "cb-1", "anna", answered=True))
    assert svc.member_states() == {"anna": {"hb": "on_call"}}
    assert [w["call_id"] for w in svc.snapshot()["queues"]["hb"]["waiting"]] == ["c2"]
    clock.now += 40
    sent.clear()
    await svc.on_message("w1", control.QueueCallbackDone("hb", "cb-1", "anna", reached=True))
    assert svc.snapshot()["callbacks"][0]["state"] == "reached"
    assert svc.member_states() == {"anna": {"hb": "wrap_up"}}
    figures = generate_latest(svc.metrics.registry).decode()  # her callback counts as hers
    assert 'rufweiche_queue_member_calls_total{member="anna",queue="hb"} 1.0' in figures
    assert 'rufweiche_queue_member_talk_seconds_total{member="anna",queue="hb"} 40.0' in figures
    assert not any(isinstance(m, control.QueueOffer) for _, m in sent)
    clock.now += 5
    await svc.dispatch()
    assert ("w2", control.QueueOffer("c2", "anna", "sip:anna@office", "hb.anna", 15.0)) in sent
