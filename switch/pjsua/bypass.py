"""Media bypass on the pjsua2 legs (switch/call/mediapath.py decides, this carries it out):
the caller answered with the callee's media address, the callee re-INVITEd with the
caller's, and the re-INVITEs that bring a leg's media back into the bridge. Functions on
the endpoint's legs (switch/pjsua/endpoint.py), called on its thread, never in a callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import pjsua2 as pj

from switch.call.mediapath import Bypass, bypass_sdp
from switch.pjsua.calls import Leg

log = logging.getLogger("switch.pjsua")


def answer_bypassed(
    legs: dict[int, Leg],
    caller: int,
    callee: int,
    plan: Bypass,
    answer: Callable[[int, str | None], bool],
) -> bool:
    """Answer ``caller`` (through ``answer``) with the callee's media address and mark the
    callee's re-INVITE with the caller's as due; False (nothing changed) if either leg is
    gone or the answer fails. The endpoint then bridges the two until the re-INVITEs."""
    leg_c, leg_t = legs.get(caller), legs.get(callee)
    if leg_c is None or leg_t is None or leg_c.ended or leg_t.ended:
        return False
    leg_c.rewrite = (plan.callee_media, plan.formats)
    leg_c.bypassed_with, leg_t.bypassed_with = callee, caller
    # pjsua made its SDP answer when the INVITE came in; the 200 carries ours instead,
    # unless a 183 carried pjsua's already: then the caller gets a re-INVITE too.
    sdp = None
    if not leg_c.early_sdp and leg_c.local_sdp:
        sdp = bypass_sdp(leg_c.local_sdp, plan.callee_media, plan.formats)
    if not answer(caller, sdp):
        leg_c.rewrite = None
        leg_c.bypassed_with = leg_t.bypassed_with = None
        return False
    if sdp is None:
        leg_c.reinvite_state = "due"
    leg_t.rewrite = (plan.caller_media, plan.formats)
    leg_t.reinvite_state = "due"
    return True


def restore_media(leg: Leg) -> bool:
    """End the bypass of ``leg``: its next SDP is pjsua's own, sent by re-INVITE. True if
    that re-INVITE is now due (:func:`send_reinvites`)."""
    if leg.rewrite is None or leg.ended:
        return False
    leg.rewrite = None
    leg.bypassed_with = None
    if leg.reinvite_state == "due":
        leg.reinvite_state = ""  # never sent: its SDP so far was pjsua's own
        return False
    leg.restore_due = True
    return True


def send_reinvites(legs: Iterable[Leg], op: Callable[[], Any]) -> bool:
    """Re-INVITEs of bypassed legs once their dialog is confirmed (never in a callback);
    and of legs whose media comes back into the bridge (:func:`restore_media`), once no
    re-INVITE of theirs is pending. ``op`` makes the call's parameters. True while some
    leg still waits (call again on the next poll)."""
    waiting = False
    for leg in legs:
        if leg.restore_due and not leg.ended:
            if leg.reinvite_state == "sent" or not leg.confirmed:
                waiting = True
                continue
            leg.restore_due = False
            _reinvite(leg, op, "media restore")
            continue
        if leg.reinvite_state != "due" or leg.ended:
            continue
        if not leg.confirmed:
            waiting = True
            continue
        if not _reinvite(leg, op, "bypass"):
            leg.rewrite = None  # the bridge stays: the call still works, only through pjsua2
    return waiting


def _reinvite(leg: Leg, op: Callable[[], Any], what: str) -> bool:
    """Send ``leg``'s re-INVITE (``what`` names it in the log); False when it failed."""
    leg.reinvite_state = "sent"
    try:
        leg.reinvite(op())
    except pj.Error as exc:
        log.warning("leg %d: %s re-INVITE failed: %s", leg.handle, what, exc.info())
        leg.reinvite_state = ""
        return False
    return True
