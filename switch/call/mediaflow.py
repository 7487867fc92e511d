"""The media sub-machine of a call: welcome, voicemail, announcement, confirm, whisper (pure).

Theory of operation
-------------------
The media services (``CallFlow(media=MediaOptions(...))``) let the switch itself talk to
the caller and to a callee. :class:`MediaFlow`, mixed into
:class:`~switch.call.callflow.CallFlow`, holds these transitions; the media phase moves
along :data:`~switch.call.states.MEDIA_TRANSITIONS`::

    NONE ──welcome──▶ WELCOME ──prompt over──▶ NONE (the steps ring)
    NONE ──final action──▶ ANNOUNCEMENT ──prompt over──▶ (hang up)
                      └──▶ GREETING ──prompt over──▶ RECORDING ──timer, hang-up──▶ (end)

* Welcome (``MediaOptions.welcome``): before the first step the caller hears the prompt
  as early media (OpenEarlyMedia, PlayPrompt(CALLER), guard timer ``prompt``; RFC 3960),
  unanswered; its PlaybackDone (or the guard) starts the first step.
* The final action with media services: ``VOICEMAIL`` and ``ANNOUNCEMENT`` enter MEDIA:
  AnswerCaller, PlayPrompt(CALLER, text) and a guard timer ``prompt``. On PlaybackDone
  (or the guard) an announcement ends with HangUpCaller + Finished(MISSED,
  final="announcement"); a voicemail greeting (with beep) goes on with RecordCaller and
  the timer ``recording`` (the plan's longest message); the caller's hang-up or that
  timer gives StopRecording and Finished(MISSED, final="voicemail"). Outcome MISSED with
  status 200: nobody took the call, the switch did. Without media services they reject
  with ``Final.sip_status`` (480) and a reason saying so.
* Answer confirmation (``Step.confirm``) and whisper (``MediaOptions.whisper``, for the
  secretarial service's targets): a callee's 200 does not bridge. The leg goes to
  CONFIRMING, hears PlayPrompt(leg, "Anruf für … Drücken Sie die 1 …") and gets the timer
  ``confirm-<leg>``. ConfirmDigit "1" bridges (other digits are ignored); a whisper
  bridges on its PlaybackDone. The timer, a hang-up or an error count the leg as
  NO_ANSWER (Cancel = BYE) and the round goes on: the caller never noticed, it still
  hears ringing. A round whose timer fires while a leg confirms waits for that leg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rules.decision import Failure, FinalKind
from switch.call.events import (
    CALLER,
    AnswerCaller,
    Cancel,
    CancelTimer,
    Command,
    ConfirmDigit,
    HangUpCaller,
    OpenEarlyMedia,
    Outcome,
    PlaybackDone,
    PlayPrompt,
    RecordCaller,
    RejectCaller,
    StartTimer,
    StopPlayback,
    StopRecording,
    TimerFired,
)
from switch.call.flowbase import FlowBase, LegView
from switch.call.prompts import CONFIRM_PROMPT, NOBODY_THERE, VOICEMAIL_GREETING, WHISPER_PROMPT
from switch.call.states import CallState, LegInput, LegState, MediaPhase

PROMPT_TIMER: Final = "prompt"
RECORDING_TIMER: Final = "recording"


def confirm_timer(leg: int) -> str:
    """The timer of a leg that confirms or hears the whisper: ``confirm-<leg>``."""
    return f"confirm-{leg}"


def confirm_leg(timer: str) -> int | None:
    """The leg of a :func:`confirm_timer` name, None for any other timer."""
    prefix, _, number = timer.partition("-")
    if prefix != "confirm" or not number.isdigit():
        return None
    return int(number)


class MediaFlow(FlowBase):
    """The media transitions of :class:`~switch.call.callflow.CallFlow` (see above)."""

    if TYPE_CHECKING:

        def _begin_step(self, index: int, at: int) -> list[Command]: ...
        def _round_over(self, at: int) -> list[Command]: ...
        def _bridge(
            self, view: LegView, at: int, *, timer_fired: bool = False
        ) -> list[Command]: ...

    # ------------------------------------------------------------------ the caller

    def _start_welcome(self, welcome: str, guard_s: float) -> list[Command]:
        """The welcome prompt as early media: the caller is not answered (RFC 3960)."""
        self._enter_media(MediaPhase.WELCOME)
        self._media_timer = PROMPT_TIMER
        return [
            OpenEarlyMedia(),
            PlayPrompt(CALLER, welcome),
            StartTimer(PROMPT_TIMER, guard_s),
        ]

    def _final_action(self, at: int) -> list[Command]:
        """No step connected the call: carry out ``Decision.final``."""
        final = self.decision.final
        media = self.media
        if media is not None and final.kind is not FinalKind.REJECT:
            # The caller is answered (200) and talks to the switch from now on.
            business = self.decision.announce_as
            self._enter(CallState.MEDIA)
            self._media_timer = PROMPT_TIMER
            if final.kind is FinalKind.ANNOUNCEMENT:
                self._enter_media(MediaPhase.ANNOUNCEMENT)
                text = final.announcement or NOBODY_THERE.format(business=business)
                play = PlayPrompt(CALLER, text)
            else:
                self._enter_media(MediaPhase.GREETING)
                text = media.greeting or VOICEMAIL_GREETING.format(business=business)
                play = PlayPrompt(CALLER, text, beep=True)
            return [AnswerCaller(), play, StartTimer(PROMPT_TIMER, media.prompt_guard_s)]
        if final.kind is FinalKind.REJECT:
            reason = final.reason
        else:
            # Media services (voicemail, announcements) will answer the caller here.
            reason = f"{final.reason} ({final.kind.value} not available yet)"
        dialled = bool(self._legs)
        rejected = final.kind is FinalKind.REJECT and not dialled
        outcome = Outcome.REJECTED if rejected else Outcome.MISSED
        return [
            RejectCaller(final.sip_status, reason),
            self._finish(outcome, "switch", final.sip_status, at),
        ]

    def _prompt_over(self, at: int) -> list[Command]:
        """The caller heard the prompt: hang up after an announcement, else record."""
        assert self.media is not None
        if self._media_phase is MediaPhase.GREETING:
            self._enter_media(MediaPhase.RECORDING)
            self._media_timer = RECORDING_TIMER
            seconds = self.media.voicemail_max_s
            return [
                RecordCaller(seconds, self.media.record_kind),
                StartTimer(RECORDING_TIMER, seconds),
            ]
        self._media_timer = None
        return [HangUpCaller(), self._finish(Outcome.MISSED, "switch", 200, at)]

    def _end_welcome(self) -> list[Command]:
        self._enter_media(MediaPhase.NONE)
        self._media_timer = None
        return [CancelTimer(PROMPT_TIMER), StopPlayback(CALLER)]

    def _welcome_over(self, at: int) -> list[Command]:
        self._enter_media(MediaPhase.NONE)
        self._media_timer = None
        return self._begin_step(0, at)

    def _media_timer_fired(self, at: int) -> list[Command]:
        if self._media_phase is MediaPhase.WELCOME:
            return self._welcome_over(at)
        if self._media_timer == PROMPT_TIMER:
            return self._prompt_over(at)  # the end of the file was never reported
        self._media_timer = None  # the message reached its longest length
        return [StopRecording(), HangUpCaller(), self._finish(Outcome.MISSED, "switch", 200, at)]

    def _end_media(self) -> list[Command]:
        """The caller left or the worker stops: close what the media services hold."""
        commands: list[Command] = []
        if self._media_timer is not None:
            commands.append(CancelTimer(self._media_timer))
            self._media_timer = None
        if self._media_phase is MediaPhase.RECORDING:
            commands.append(StopRecording())  # a message cut by the hang-up is still kept
        else:
            commands.append(StopPlayback(CALLER))
        return commands

    # ------------------------------------------------------------------ events

    def _on_media_timer(self, event: TimerFired) -> list[Command] | None:
        """A prompt's or a confirmation's timer; None when it is neither (a round's)."""
        if event.timer == self._media_timer:
            return self._media_timer_fired(event.at)
        leg = confirm_leg(event.timer)
        if leg is None or leg not in self._prompting:
            return None
        view = self._legs[leg]
        if not self._prompting[leg]:
            # A whisper whose end was never reported: connect rather than lose the call.
            return self._bridge(view, event.at, timer_fired=True)
        commands: list[Command] = [Cancel(leg)]  # BYE: nobody pressed 1 in time
        commands.extend(self._unconfirmed(view, LegInput.CANCEL, event.at, timer_fired=True))
        return commands

    def _on_digit(self, event: ConfirmDigit) -> list[Command]:
        view = self._leg(event.leg)  # still reject a leg id we never dialled
        if self.media is None:
            return []  # no media services: every answer already counted as confirmed
        if view.state is not LegState.CONFIRMING or not self._prompting.get(view.leg):
            return []
        if event.digit != "1":
            return []  # only 1 takes the call; other keys are ignored, the timer runs on
        return [StopPlayback(view.leg), *self._bridge(view, event.at)]

    def _on_playback_done(self, event: PlaybackDone) -> list[Command]:
        if event.leg == CALLER:
            if self._media_phase is MediaPhase.WELCOME and self.state is CallState.DIALLING:
                return [CancelTimer(PROMPT_TIMER), *self._welcome_over(event.at)]
            if self.state is not CallState.MEDIA or self._media_timer != PROMPT_TIMER:
                return []
            return [CancelTimer(PROMPT_TIMER), *self._prompt_over(event.at)]
        view = self._leg(event.leg)
        if view.state is LegState.CONFIRMING and self._prompting.get(view.leg) is False:
            return self._bridge(view, event.at)  # the whisper was heard
        return []

    # ------------------------------------------------------------------ a callee

    def _prompt_callee(self, view: LegView, confirm: bool, at: int) -> list[Command]:
        """The callee answered a confirm step (or is the service, with whisper on)."""
        assert self.media is not None
        self._move(view, LegInput.PROMPT, answered_at=at)
        self._prompting[view.leg] = confirm
        template = CONFIRM_PROMPT if confirm else WHISPER_PROMPT
        text = template.format(business=self.decision.announce_as)
        timer = confirm_timer(view.leg)
        return [PlayPrompt(view.leg, text), StartTimer(timer, self.media.confirm_timeout_s)]

    def _unconfirmed(
        self, view: LegView, move: LegInput, at: int, *, timer_fired: bool = False
    ) -> list[Command]:
        """A confirming leg hung up or timed out: it counts as no answer (RFC-free policy)."""
        del self._prompting[view.leg]
        commands: list[Command] = [] if timer_fired else [CancelTimer(confirm_timer(view.leg))]
        self._move(view, move, ended_at=at, failure=Failure.NO_ANSWER)
        self._step_failures.append(Failure.NO_ANSWER)
        if self._live_unanswered() or self._prompting:
            return commands
        if self._round is not None:
            commands.extend(self._round_over(at))
        return commands

    def _cancel_prompting(self, at: int, keep: int | None = None) -> list[Command]:
        commands: list[Command] = []
        for leg in [leg for leg in self._prompting if leg != keep]:
            del self._prompting[leg]
            self._move(self._legs[leg], LegInput.CANCEL, ended_at=at)
            commands.append(Cancel(leg))
            commands.append(CancelTimer(confirm_timer(leg)))
        return commands


__all__ = ["PROMPT_TIMER", "RECORDING_TIMER", "MediaFlow", "confirm_leg", "confirm_timer"]
