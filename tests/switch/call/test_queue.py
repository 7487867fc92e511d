"""The pure queue model (switch/call/queue.py): order, strategies, skills, pause, wrap-up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.call.queue import (
    MemberConfig,
    MemberStatus,
    Queue,
    QueueConfig,
    Refusal,
    Strategy,
)


def config(strategy: Strategy = Strategy.LONGEST_IDLE, **kw: object) -> QueueConfig:
    members = kw.pop(
        "members",
        (
            MemberConfig("anna", "sip:anna@office"),
            MemberConfig("ben", "sip:ben@office"),
        ),
    )
    return QueueConfig("heimbuero", members, strategy, **kw)  # type: ignore[arg-type]


def test_callers_wait_in_order_and_know_their_position() -> None:
    q = Queue(config(), now=0)
    for n in range(3):
        assert q.join(f"c{n}", "tischlerei", "w1", now=n) == n + 1
    assert [q.position(f"c{n}") for n in range(3)] == [1, 2, 3]
    assert q.position("nobody") == 0
    assert q.join("c1", "tischlerei", "w1", now=5) == 2  # joining twice keeps the place
    q.leave("c0", now=6)
    assert q.position("c2") == 2


def test_queue_full_and_nobody_logged_in_refuse() -> None:
    q = Queue(config(max_length=1), now=0)
    assert q.join("a", "t", "w1", 0) == 1
    assert q.join("b", "t", "w1", 0) is Refusal.FULL
    q2 = Queue(config(), now=0)
    q2.set_member("anna", "logout", 0)
    q2.set_member("ben", "logout", 0)
    assert q2.join("a", "t", "w1", 0) is Refusal.NO_MEMBER


def test_longest_idle_picks_the_member_idle_longest() -> None:
    q = Queue(config(wrapup_s=5), now=0)
    # anna takes a call and finishes it at 100 (+5 s wrap-up): ben has been idle longer.
    q.join("c0", "t", "w1", 1)
    first = q.offers(1)
    assert [o.member for o in first] == ["anna"]  # both idle since 0: configuration order
    q.answered("c0", "anna", 2)
    q.call_ended("anna", 100)
    q.join("c1", "t", "w1", 101)
    assert [o.member for o in q.offers(110)] == ["ben"]


def test_wrap_up_keeps_a_member_off_until_it_is_over() -> None:
    only = (MemberConfig("anna", "sip:anna@office"),)
    q = Queue(config(members=only, wrapup_s=10), now=0)
    q.join("c0", "t", "w1", 0)
    q.offers(0)
    q.answered("c0", "anna", 1)
    assert q.call_ended("anna", 31) == 30
    q.join("c1", "t", "w1", 32)
    assert q.offers(35) == []
    assert q.members["anna"].status(35) is MemberStatus.WRAP_UP
    assert q.next_change(35) == 41
    assert [o.member for o in q.offers(41)] == ["anna"]


def test_a_skill_keeps_a_business_off_a_member_who_may_not_answer_it() -> None:
    members = (
        MemberConfig("anna", "sip:anna@office", skills={"tischlerei": 1}),
        MemberConfig("ben", "sip:ben@office", skills={"praxis": 1}),
    )
    q = Queue(config(members=members), now=0)
    q.join("c0", "praxis", "w1", 0)
    q.join("c1", "tischlerei", "w1", 1)
    offers = {o.call_id: o.member for o in q.offers(2)}
    assert offers == {"c0": "ben", "c1": "anna"}
    assert q.join("c2", "elektro", "w1", 3) is Refusal.NO_MEMBER


def test_by_skill_prefers_the_better_priority_then_penalty_wins_over_it() -> None:
    members = (
        MemberConfig("anna", "sip:anna@office", skills={"t": 2}),
        MemberConfig("ben", "sip:ben@office", skills={"t": 1}),
    )
    q = Queue(config(Strategy.BY_SKILL, members=members), now=0)
    q.join("c0", "t", "w1", 0)
    assert [o.member for o in q.offers(0)] == ["ben"]
    members = (
        MemberConfig("anna", "sip:anna@office", skills={"t": 2}),
        MemberConfig("ben", "sip:ben@office", skills={"t": 1}, penalty=1),
    )
    q = Queue(config(Strategy.BY_SKILL, members=members), now=0)
    q.join("c0", "t", "w1", 0)
    assert [o.member for o in q.offers(0)] == ["anna"]


def test_ring_all_offers_every_free_member_and_the_answer_frees_the_others() -> None:
    q = Queue(config(Strategy.RING_ALL), now=0)
    q.join("c0", "t", "w1", 0)
    assert sorted(o.member for o in q.offers(0)) == ["anna", "ben"]
    handled = q.answered("c0", "ben", 3)
    assert handled is not None
    assert (handled.member, handled.waited_s) == ("ben", 3)
    assert q.members["anna"].status(3) is MemberStatus.AVAILABLE
    assert q.members["ben"].status(3) is MemberStatus.ON_CALL


def test_round_robin_and_fewest_calls() -> None:
    members = tuple(MemberConfig(n, f"sip:{n}@office") for n in ("a", "b", "c"))
    q = Queue(config(Strategy.ROUND_ROBIN, members=members, wrapup_s=0), now=0)
    picked = []
    for n in range(4):
        q.join(f"c{n}", "t", "w1", n)
        (offer,) = q.offers(n)
        picked.append(offer.member)
        q.answered(offer.call_id, offer.member, n)
        q.call_ended(offer.member, n)
    assert picked == ["a", "b", "c", "a"]
    q = Queue(config(Strategy.FEWEST_CALLS, members=members, wrapup_s=0), now=0)
    q.members["a"].calls = 3
    q.members["b"].calls = 1
    q.members["c"].calls = 2
    q.join("x", "t", "w1", 0)
    assert [o.member for o in q.offers(0)] == ["b"]


def test_pause_takes_effect_at_once_and_unpause_returns() -> None:
    q = Queue(config(), now=0)
    assert q.set_member("anna", "pause", 0) is MemberStatus.PAUSED
    q.join("c0", "t", "w1", 0)
    assert [o.member for o in q.offers(0)] == ["ben"]
    q.join("c1", "t", "w1", 1)
    assert q.offers(1) == []
    assert q.set_member("anna", "unpause", 2) is MemberStatus.AVAILABLE
    assert [o.member for o in q.offers(2)] == ["anna"]
    with pytest.raises(ValueError, match="member state"):
        q.set_member("anna", "nap", 3)


def test_no_answer_offers_the_next_member_then_starts_over() -> None:
    q = Queue(config(), now=0)
    q.join("c0", "t", "w1", 0)
    (first,) = q.offers(0)
    assert q.offers(1) == []  # ringing: nobody else yet
    q.offer_failed("c0", first.member, 15)
    (second,) = q.offers(15)
    assert second.member != first.member
    q.offer_failed("c0", second.member, 30)
    (third,) = q.offers(30)
    assert third.member == first.member  # everybody tried: again from the top


def test_busy_elsewhere_is_skipped_and_max_wait_expires() -> None:
    q = Queue(config(max_wait_s=60), now=0)
    for m in q.members.values():
        m.busy_elsewhere = True
    q.join("c0", "t", "w1", 0)
    assert q.offers(0) == []
    assert q.expired(59) == []
    assert [w.call_id for w in q.expired(60)] == ["c0"]
    handled = q.leave("c0", 60)
    assert handled is not None
    assert handled.member is None
    assert q.leave("c0", 61) is None


def test_a_worker_crash_drops_its_callers_and_ends_its_members_calls() -> None:
    q = Queue(config(), now=0)
    q.join("a", "t", "w1", 0)
    q.join("b", "t", "w2", 0)
    q.join("c", "t", "w1", 0)
    offers = q.offers(0)
    q.answered("a", offers[0].member, 1)
    gone = q.leave_worker("w1", 5)
    assert [h.call_id for h in gone] == ["c"]
    assert [w.call_id for w in q.waiting] == ["b"]
    assert q.members[offers[0].member].on_call is None


def test_reconfigure_keeps_waiters_and_member_state() -> None:
    q = Queue(config(), now=0)
    q.join("a", "t", "w1", 0)
    q.set_member("ben", "pause", 0)
    members = (
        MemberConfig("ben", "sip:ben@office"),
        MemberConfig("cleo", "sip:cleo@office"),
    )
    q.reconfigure(config(members=members), now=10)
    assert q.position("a") == 1
    assert q.members["ben"].paused
    assert list(q.members) == ["ben", "cleo"]
    assert q.member_by_user("cleo") == "cleo"
    assert q.member_by_user("zed") is None
    snap = q.snapshot(12)
    assert snap["longest_wait_s"] == 12


def test_expected_wait_grows_with_the_position() -> None:
    q = Queue(config(), now=0)
    assert q.expected_wait_s(1) == 60  # 120 s default handle time over two members
    assert q.expected_wait_s(4) == 240


# ------------------------------------------------------------------ properties

ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 9), st.sampled_from(["t", "p"])),
        st.tuples(st.just("offers"), st.just(0), st.just("")),
        st.tuples(st.just("answer"), st.integers(0, 9), st.just("")),
        st.tuples(st.just("fail"), st.integers(0, 9), st.just("")),
        st.tuples(st.just("leave"), st.integers(0, 9), st.just("")),
        st.tuples(st.just("end"), st.integers(0, 2), st.just("")),
        st.tuples(
            st.just("member"), st.integers(0, 2), st.sampled_from(["login", "logout", "pause"])
        ),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.sampled_from(list(Strategy)))
def test_invariants_hold_under_any_sequence(
    script: list[tuple[str, int, str]], s: Strategy
) -> None:
    members = (
        MemberConfig("m0", "sip:m0@o", skills={"t": 1}),
        MemberConfig("m1", "sip:m1@o", skills={"p": 1, "t": 2}, penalty=1),
        MemberConfig("m2", "sip:m2@o"),
    )
    q = Queue(config(s, members=members, wrapup_s=3, max_length=6), now=0)
    now = 0.0
    offered: dict[str, set[str]] = {}  # call -> members ringing
    for op, n, arg in script:
        now += 1
        if op == "join":
            q.join(f"c{n}", arg, "w1", now)
        elif op == "offers":
            order = [w.call_id for w in q.waiting]
            for offer in q.offers(now):
                member = q.members[offer.member]
                waiter = next(w for w in q.waiting if w.call_id == offer.call_id)
                assert member.answers(waiter.tenant)  # skills hold
                assert not member.paused
                assert member.logged_in
                offered.setdefault(offer.call_id, set()).add(offer.member)
            assert [w.call_id for w in q.waiting] == order  # offers never reorder
        elif op == "answer" and offered.get(f"c{n}"):
            who = sorted(offered.pop(f"c{n}"))[0]
            q.answered(f"c{n}", who, now)
        elif op == "fail" and offered.get(f"c{n}"):
            who = offered[f"c{n}"].pop()
            q.offer_failed(f"c{n}", who, now)
        elif op == "leave":
            q.leave(f"c{n}", now)
            offered.pop(f"c{n}", None)
        elif op == "end":
            q.call_ended(f"m{n}", now)
        elif op == "member":
            q.set_member(f"m{n}", arg, now)
        # a member rings for at most one caller, and never while on a call
        for member in q.members.values():
            assert len(member.ringing) <= 1
            assert not (member.ringing and member.on_call)
        assert len(q.waiting) <= 6
        assert [q.position(w.call_id) for w in q.waiting] == list(range(1, len(q.waiting) + 1))
        assert sorted(w.joined_at for w in q.waiting) == [w.joined_at for w in q.waiting]
