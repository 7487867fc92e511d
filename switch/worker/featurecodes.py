"""FeatureDesk: the star codes of the businesses' phones, for the CallDriver.

A ``*`` number that is not a call (switch/call/features.py says what it means): presence
(``*30``/``*31``…), call forwarding (``*21*<number>#``, ``#21#``) and the dictation box
(issue 7), which is a call of its own with a record, and the queue members' codes
(``*45``..``*48``, issue 19), which the queue desk sends on. A code is answered, so the phone
shows that it worked, and hung up after :data:`FEATURE_HANGUP_S`; it shows up as a
presence or forwarding change, not as a call.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from rules import DialPlan
from rules.decision import Decision
from switch.call.events import Finished, Outcome
from switch.call.features import (
    Dictate,
    QueueMemberCode,
    Refuse,
    SetForward,
    SetPresence,
    classify_feature,
)
from switch.call.prompts import MediaOptions
from switch.control import messages as control
from switch.masking import loggable_number
from switch.worker.commands import ActiveCall, deadline
from switch.worker.media import tenant_media
from switch.worker.seam import IncomingInvite

if TYPE_CHECKING:
    from switch.worker.driver import CallDriver

log = logging.getLogger("switch.worker")

FEATURE_HANGUP_S = 1.0
FEATURE_TIMER = "feature-hangup"


class FeatureDesk:
    """Feature codes and dictation of one :class:`~switch.worker.driver.CallDriver`."""

    def __init__(self, driver: CallDriver) -> None:
        self.driver = driver

    def code(self, call: ActiveCall, code: str, invite: IncomingInvite) -> None:
        call.feature = True
        feature = classify_feature(
            code,
            invite.from_uri,
            self.driver.plans,
            self.driver.config.routes,
            lambda plan: tenant_media(plan).dictation_code,
            from_user=invite.from_user,
        )
        if isinstance(feature, Refuse):
            log.info("feature code %s from %s: %d %s", code, loggable_number(invite.from_user),
                     feature.status, feature.reason)  # fmt: skip
            self.driver.commands.reject(call, feature.status, feature.reason)
        elif isinstance(feature, QueueMemberCode):
            self.driver.queueing.member_code(call, feature)
        elif isinstance(feature, Dictate):
            options = tenant_media(feature.plan).dictation_options()
            self._dictate(call, feature.plan, feature.person, feature.decision, options, invite)
        elif isinstance(feature, SetForward):
            self._set_forward(call, feature)
        else:
            self._set_presence(call, feature)

    def _set_forward(self, call: ActiveCall, feature: SetForward) -> None:
        tenant, person, number = feature.plan.tenant, feature.person, feature.number
        targets = self.driver.forwarding.setdefault(tenant, {})
        if number is None:
            targets.pop(person, None)
        else:
            targets[person] = number
        self.driver.send(control.ForwardSet(tenant, person, number))
        log.info("feature code tenant=%s: %s forwarded to %s", tenant, person,
                 loggable_number(number) if number else "nobody")  # fmt: skip
        self.done(call)

    def _set_presence(self, call: ActiveCall, feature: SetPresence) -> None:
        tenant, person, state = feature.plan.tenant, feature.person, feature.state
        self.driver.presence.setdefault(tenant, {})[person] = state
        self.driver.send(control.PresenceSet(tenant, person, str(state)))
        log.info("feature code tenant=%s: %s is %s", tenant, person, state)
        self.done(call)

    def done(self, call: ActiveCall) -> None:
        """A feature code is answered (the phone shows it worked) and hung up shortly."""
        if self.driver.sip.answer(call.caller_handle):
            call.caller_answered = True
            call.finished = Finished(Outcome.ANSWERED, None, "switch", 200, time.monotonic_ns())
            self.driver.timers.start(call.key, FEATURE_TIMER, deadline(FEATURE_HANGUP_S))

    def _dictate(
        self,
        call: ActiveCall,
        plan: DialPlan,
        person: str,
        decision: Decision,
        options: MediaOptions,
        invite: IncomingInvite,
    ) -> None:
        """The dictation box (issue 7): prompt, beep, then record like a voicemail."""
        call.feature = False  # a call of its own, with a call record
        call.recorder.routed(plan.tenant)
        call.dictation_person = person
        driver = self.driver
        if driver.media is None or driver.draining:
            driver.commands.reject(call, 503, "Service Unavailable", retry=driver.draining)
            return
        call.recorder.decided(decision, None)
        log.info("call %s tenant=%s: %s dictates", invite.call_id, plan.tenant, person)
        self.driver.start_flow(call, invite, decision, options)
        self.driver.run_pending()


__all__ = ["FEATURE_HANGUP_S", "FEATURE_TIMER", "FeatureDesk"]
