"""The pjsua2 endpoint of one worker: lifecycle, UDP transport, the event pump, leg commands.

Theory of operation
-------------------
One thread (the worker's main thread) creates the endpoint with ``uaConfig.threadCnt = 0``
and is the only one that ever calls into it. :meth:`SipEndpoint.poll` runs
``libHandleEvents``; the pjsua2 callbacks it triggers (calls.py) append frozen leg events
to a list, which ``poll`` returns. The worker then carries out its decisions through the
methods below, still on the same thread, outside any callback. RTP shares pjsua's SIP
ioqueue (``medConfig.hasIoqueue = False``, no media thread): while the bridge carries
audio, :meth:`SipEndpoint.poll` goes on running ``libHandleEvents`` until a leg event, a
:meth:`SipEndpoint.wake` or its time is up, so packets are taken as they arrive; while it
carries none (every call bypassed, or no call) nothing polls and nothing ticks
(switch/pjsua/clock.py). An idle worker wakes for SIP, a timer or a control message only.

Legs are named by handles that are never reused. pjsua2 holds at most
:data:`MAX_LEGS` calls per process (a compile-time limit of the wheel); :meth:`dial`
refuses a fifth rather than letting ``makeCall`` fail, and a Call object whose creation
failed is never touched again (doing so aborts the process with a C assertion).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

import pjsua2 as pj

from switch.call.calllog import MediaStats
from switch.call.mediapath import Bypass
from switch.errors import EndpointError, LegUnavailable
from switch.pjsua import bypass
from switch.pjsua.calls import Leg, read_invite, read_stats
from switch.pjsua.clock import BridgeClock
from switch.pjsua.epconfig import MAX_LEGS, EndpointConfig, account_config, endpoint_config
from switch.pjsua.media import MediaPorts
from switch.pjsua.setup import (
    CODEC_PRIORITIES,
    CountingEndpoint,
    LogWriter,
    SlotAccount,
    quiet_stdout,
)
from switch.worker.seam import LegEnded, LegEvent

log = logging.getLogger("switch.pjsua")


class SipEndpoint:
    """One pjsua2 endpoint on one UDP address; all methods on the thread that started it."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self._ep: Any = None
        self._account: Any = None
        self._transport_id: int | None = None
        self._writer: Any = None
        self._legs: dict[int, Leg] = {}
        self._ended: list[Leg] = []
        self._bridges: dict[int, int] = {}
        self._connected: set[frozenset[int]] = set()  # bridged pairs whose audio flows
        self._clock: BridgeClock | None = None
        self._events: list[LegEvent] = []
        self._next_handle = 1
        self._reinvites_due = False
        self._woken = False
        self._doorbell: socket.socket | None = None
        self.media = MediaPorts(self.audio, self._need_clock)
        """Prompts and recordings on the legs (switch/pjsua/media.py)."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        cfg = self.config
        ep = CountingEndpoint()
        with quiet_stdout():  # libCreate logs its banner to the console before any config
            ep.libCreate()
        self._writer = LogWriter()
        try:
            ep.libInit(endpoint_config(cfg, self._writer))
            tcfg = pj.TransportConfig()
            tcfg.port = cfg.port
            tcfg.boundAddress = cfg.host
            self._transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
            self._clock = BridgeClock(ep.audDevManager())
            for codec in ep.codecEnum2():
                ep.codecSetPriority(codec.codecId, CODEC_PRIORITIES.get(codec.codecId, 0))
            ep.libStart()
            account = SlotAccount(self)
            account.create(account_config(cfg), True)
        except pj.Error as exc:
            self._ep = ep
            self.close()
            raise EndpointError(f"SIP endpoint {cfg.host}:{cfg.port}: {exc.info()}") from None
        self._ep = ep
        self._account = account
        self._doorbell = _doorbell(cfg.host, cfg.port)

    @property
    def doorbell_fd(self) -> int:
        """A non-blocking UDP socket connected to our own SIP port: whatever is written to
        it ends a waiting :meth:`poll` (for :func:`signal.set_wakeup_fd`)."""
        return self._doorbell.fileno() if self._doorbell is not None else -1

    def wake(self) -> None:
        """End a waiting :meth:`poll` at once; from any thread."""
        self._woken = True
        doorbell = self._doorbell
        if doorbell is not None:
            with contextlib.suppress(OSError):
                doorbell.send(b"\0")

    def close(self) -> None:
        """Hang up what is left and destroy the library (idempotent)."""
        ep = self._ep
        if ep is None:
            return
        try:
            if self._legs:
                ep.hangupAllCalls()
                deadline = time.monotonic() + 1.0
                while self._legs and time.monotonic() < deadline:
                    self.poll(20)
            self.media.close()
            self._legs.clear()
            self._ended.clear()
            # Stop listening before the library winds down: while pjsua is shutting down
            # it answers a new INVITE with 480 itself, which an edge would relay to the
            # caller; with the port closed the edge times out and takes the next worker.
            if self._transport_id is not None:
                with contextlib.suppress(pj.Error):
                    ep.transportClose(self._transport_id)
                self._transport_id = None
            if self._account is not None:
                self._account.shutdown()
            self._account = None
            ep.libDestroy()
        except pj.Error as exc:
            log.warning("SIP endpoint shutdown: %s", exc.info())
        self._ep = None
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None

    # ------------------------------------------------------------------ pump

    def poll(self, timeout_ms: int) -> list[LegEvent]:
        """Run pjsua for up to ``timeout_ms`` and return what happened meanwhile."""
        self._collect_ended()
        started = time.monotonic_ns()
        timeout_ms = max(0, self._settle_clock(timeout_ms))
        self._ep.libHandleEvents(timeout_ms)
        if self.clock_running:
            # RTP shares the SIP ioqueue (epconfig.py): a packet ends libHandleEvents but
            # is no news for the worker; go on waiting for a leg event, a wake or the time.
            deadline = started + timeout_ms * 1_000_000
            while self._bridge_in_use and not (self._events or self._woken or self._reinvites_due):
                left_ms = (deadline - time.monotonic_ns()) // 1_000_000
                if left_ms <= 0:
                    break
                self._ep.libHandleEvents(left_ms)
        # Cleared only now: a wake that came before this poll (its doorbell byte ended the
        # first wait) still ends the pump, and the worker reads its message next.
        self._woken = False
        if self._reinvites_due:
            self._send_reinvites()
        self._settle_clock(0)
        events, self._events = self._events, []
        return events

    def _collect_ended(self) -> None:
        """Drop the Call objects of legs that ended in an earlier poll.

        ``Call::~Call`` clears the user data of the pjsua call slot it remembers and hangs
        up the call in it if active. Once pjsua has reset the slot that is harmless, but
        pjsua reuses slots at once: if a live leg holds the slot now, the object stays
        disowned (:meth:`Leg.release`) and its C++ part is leaked rather than run.
        """
        if not self._ended:
            return
        busy = {leg.getId() for leg in self._legs.values()}
        for leg in self._ended:
            slot = leg.getId()
            if leg.started and slot >= 0 and slot not in busy:
                leg.thisown = True  # the slot is free: let the destructor run
        self._ended.clear()

    @property
    def legs_in_use(self) -> int:
        return len(self._legs)

    @property
    def rejected_by_pjsua(self) -> int:
        """INVITEs pjsua answered 486 on its own because every call slot was taken."""
        return int(self._ep.rejected_by_pjsua) if self._ep is not None else 0

    def _emit(self, event: LegEvent) -> None:
        self._events.append(event)
        if isinstance(event, LegEnded) and event.handle in self._legs:
            handle = event.handle
            self.media.leg_ended(handle)
            leg = self._legs.pop(handle)
            self._connected = {pair for pair in self._connected if handle not in pair}
            leg.release()
            self._ended.append(leg)
            peer = self._bridges.pop(handle, None)
            if peer is not None:
                self._bridges.pop(peer, None)

    def _new_handle(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    def _incoming(self, account: Any, prm: Any, at: int) -> None:
        handle = self._new_handle()
        leg = Leg(
            account,
            prm.callId,
            handle,
            inbound=True,
            emit=self._emit,
            media_changed=self._media_changed,
        )
        self._legs[handle] = leg
        self._events.append(read_invite(leg, prm, at))

    # ------------------------------------------------------------------ media

    def _settle_clock(self, timeout_ms: int) -> int:
        """Stop the bridge's clock if nothing uses the bridge any more; the poll's wait,
        shortened while the clock lingers (switch/pjsua/clock.py)."""
        clock = self._clock
        if clock is None:
            return timeout_ms
        clock.settle(self._bridge_in_use)
        linger = clock.wait_ms()
        return timeout_ms if linger is None else min(timeout_ms, linger)

    @property
    def _bridge_in_use(self) -> bool:
        return bool(self._connected) or self.media.in_use

    def _need_clock(self) -> None:
        if self._clock is not None:
            self._clock.need()

    @property
    def clock_running(self) -> bool:
        """Whether the bridge's clock runs (switch/pjsua/clock.py): not while every call
        is bypassed or none has audio in the bridge."""
        return self._clock is not None and self._clock.running

    def audio(self, handle: int) -> Any | None:
        """The audio port of leg ``handle`` in the conference bridge, once its media is up."""
        leg = self._legs.get(handle)
        if leg is None or leg.ended:
            return None
        return leg.audio()

    def _media_changed(self, handle: int) -> None:
        self.media.media_changed(handle)
        peer = self._bridges.get(handle)
        if peer is not None:
            leg, other = self._legs.get(handle), self._legs.get(peer)
            if (
                leg is not None
                and leg.rewrite is not None
                and leg.reinvite_state == "done"
                and (other is None or other.reinvite_state in ("", "done"))
            ):
                # Bypassed: the far side now sends to the other side directly. The bridge
                # carried its audio until this moment (no clipping while the re-INVITE ran).
                self._unbridge(handle)
                return
            self._connect(handle, peer)

    def _connect(self, a: int, b: int) -> None:
        leg_a, leg_b = self._legs.get(a), self._legs.get(b)
        if leg_a is None or leg_b is None:
            return
        audio_a, audio_b = leg_a.audio(), leg_b.audio()
        if audio_a is None or audio_b is None:
            return  # connected by _media_changed once the other side's media is up
        self._need_clock()
        try:
            audio_a.startTransmit(audio_b)
            audio_b.startTransmit(audio_a)
        except pj.Error as exc:
            log.warning("bridge %d<->%d failed: %s", a, b, exc.info())
            return
        self._connected.add(frozenset((a, b)))

    def bridge(self, a: int, b: int) -> None:
        """Connect the audio of two legs both ways (again after every media change)."""
        for handle in (a, b):
            old = self._bridges.pop(handle, None)
            if old is not None:
                self._disconnect(handle, old)
                self._bridges.pop(old, None)
        self._bridges[a] = b
        self._bridges[b] = a
        self._connect(a, b)

    def unbridge(self, handle: int) -> None:
        """Disconnect leg ``handle`` from the leg it is bridged with, if any.

        A bypassed leg (and the leg it was bypassed with) first gets the media back: a
        re-INVITE with pjsua's own SDP (:meth:`_restore_media`), so that a prompt or the
        ringback reaches the caller and a later bridge carries audio (a transfer)."""
        leg = self._legs.get(handle)
        if leg is not None and leg.rewrite is not None:
            partner = leg.bypassed_with
            self._restore_media(leg)
            other = self._legs.get(partner) if partner is not None else None
            if other is not None:
                self._restore_media(other)
        self._unbridge(handle)

    def _unbridge(self, handle: int) -> None:
        peer = self._bridges.pop(handle, None)
        if peer is not None:
            self._bridges.pop(peer, None)
            self._disconnect(handle, peer)

    def _disconnect(self, a: int, b: int) -> None:
        self._connected.discard(frozenset((a, b)))
        leg_a, leg_b = self._legs.get(a), self._legs.get(b)
        if leg_a is None or leg_b is None:
            return
        audio_a, audio_b = leg_a.audio(), leg_b.audio()
        try:
            if audio_a is not None and audio_b is not None:
                audio_a.stopTransmit(audio_b)
                audio_b.stopTransmit(audio_a)
        except pj.Error as exc:
            log.debug("unbridge %d<->%d: %s", a, b, exc.info())

    # ------------------------------------------------------------------ commands

    def _op(
        self, status: int = 0, reason: str = "", headers: Sequence[tuple[str, str]] = ()
    ) -> Any:
        prm = pj.CallOpParam(True)
        if status:
            prm.statusCode = status
        if reason:
            prm.reason = reason
        for name, value in headers:
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        return prm

    def provisional(self, handle: int, status: int = 180) -> None:
        """180 (no SDP) or 183 (with our SDP answer) to an inbound leg."""
        leg = self._legs.get(handle)
        if leg is None or leg.ended:
            return
        try:
            leg.answer(self._op(status))
        except pj.Error as exc:
            log.warning("leg %d: sending %d failed: %s", handle, status, exc.info())
            return
        if status == 183:
            leg.early_sdp = True

    def answer(self, handle: int, sdp: str | None = None) -> bool:
        leg = self._legs.get(handle)
        if leg is None or leg.ended:
            return False
        prm = self._op(200)
        if sdp is not None:
            prm.sdp.wholeSdp = sdp  # pjsua2 answers with this SDP instead of its own
        try:
            leg.answer(prm)
        except pj.Error as exc:
            log.warning("leg %d: answering failed: %s", handle, exc.info())
            return False
        leg.answered_by_us = True
        return True

    def remote_sdp(self, handle: int) -> str | None:
        """The SDP the far side of leg ``handle`` sent (INVITE offer, or 18x/200 answer)."""
        leg = self._legs.get(handle)
        return None if leg is None else leg.remote_sdp

    def answer_bypassed(self, caller: int, callee: int, plan: Bypass) -> bool:
        """Answer the caller with the callee's media address, re-INVITE the callee with the
        caller's (switch/pjsua/bypass.py); the bridge carries the audio until the callee's
        re-INVITE is answered, then pjsua2 is out of the media path."""
        if not bypass.answer_bypassed(self._legs, caller, callee, plan, self.answer):
            return False
        self._reinvites_due = True
        self.bridge(caller, callee)
        return True

    def _restore_media(self, leg: Leg) -> None:
        if bypass.restore_media(leg):
            self._reinvites_due = True

    def _send_reinvites(self) -> None:
        self._reinvites_due = bypass.send_reinvites(self._legs.values(), self._op)

    def reject(
        self, handle: int, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """A final error response to an inbound leg that is not answered yet."""
        leg = self._legs.get(handle)
        if leg is None or leg.ended:
            return
        try:
            leg.hangup(self._op(status, reason, headers))
        except pj.Error as exc:
            log.warning("leg %d: rejecting with %d failed: %s", handle, status, exc.info())

    def end(self, handle: int) -> None:
        """CANCEL a ringing outbound leg, or BYE an answered leg of either kind."""
        leg = self._legs.get(handle)
        if leg is None or leg.ended:
            return
        if leg.connected or leg.answered_by_us:
            leg.stats = read_stats(leg)
        try:
            leg.hangup(self._op())
        except pj.Error as exc:
            log.warning("leg %d: hangup failed: %s", handle, exc.info())

    def dial(self, uri: str, from_header: str, headers: Sequence[tuple[str, str]]) -> int:
        """Send an INVITE; returns the new leg's handle or raises :class:`LegUnavailable`.

        pjsua frees a call's slot a moment after it reported the call disconnected (a
        dial 1-10 ms after two legs ended met PJ_ETOOMANY with 3 of 4 legs in use,
        bench/concurrency.py): such a dial runs pjsua's events for up to
        :data:`SLOT_WAIT_MS` and tries again, instead of failing the caller's call."""
        if len(self._legs) >= MAX_LEGS:
            raise LegUnavailable(f"no free leg for {uri!r}: {len(self._legs)} in use")
        deadline = time.monotonic_ns() + SLOT_WAIT_MS * 1_000_000
        while True:
            handle, error = self._make_call(uri, from_header, headers)
            if error is None:
                return handle
            if error.status != _PJ_ETOOMANY or time.monotonic_ns() >= deadline:
                status = 503 if error.status == _PJ_ETOOMANY else 404
                raise LegUnavailable(f"INVITE to {uri!r} failed: {error.info()}", sip_status=status)
            self._ep.libHandleEvents(1)  # events it produces wait in self._events for poll

    def _make_call(
        self, uri: str, from_header: str, headers: Sequence[tuple[str, str]]
    ) -> tuple[int, Any]:
        handle = self._new_handle()
        leg = Leg(self._account, pj.PJSUA_INVALID_ID, handle, inbound=False, emit=self._emit,
                  media_changed=self._media_changed)  # fmt: skip
        prm = self._op(headers=headers)
        prm.txOption.localUri = from_header
        self._legs[handle] = leg
        try:
            leg.makeCall(uri, prm)
        except pj.Error as exc:
            # Never touch a Call whose creation failed (C assertion). Keep the object
            # until the next poll so its destructor does not run inside this frame.
            self._legs.pop(handle, None)
            leg.release()
            self._ended.append(leg)
            return handle, exc
        leg.started = True
        return handle, None

    def stats(self, handle: int) -> MediaStats | None:
        leg = self._legs.get(handle) or next((x for x in self._ended if x.handle == handle), None)
        if leg is None:
            return None
        return leg.stats if leg.ended else read_stats(leg)


def _doorbell(host: str, port: int) -> socket.socket:
    """pjsip's UDP transport drops a datagram shorter than any SIP message unparsed and
    unlogged (``MIN_SIZE`` in sip_transport_udp.c), but its ``select`` wakes for it."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((target, port))
    return sock


_PJ_ETOOMANY = 70010  # PJ_ERRNO_START_STATUS + 10
SLOT_WAIT_MS = 50
"""How long :meth:`SipEndpoint.dial` waits for pjsua to free a slot it still holds."""
