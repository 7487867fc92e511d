"""One B2BUA worker process: the loop around one SIP endpoint, one thread.

``python -m switch.worker --sip 127.0.0.1:5060 --dialplans dialplans/ [--control-fd N]``

Theory of operation
-------------------
The main thread owns the pjsua2 endpoint (switch/pjsua/, behind the
:class:`~switch.worker.seam.SipLegs` seam) and runs :meth:`Worker.run`: ``poll``
(``libHandleEvents``, at most until the next call-flow timer and never longer than
:data:`MAX_POLL_MS` so that control messages are picked up) returns leg events, which the
:class:`~switch.worker.driver.CallDriver` turns into call-flow events and commands. This
module only runs that loop, answers the supervisor's control messages
(:mod:`switch.control.messages`, via :class:`~switch.worker.channel.ControlChannel`),
drains and stops.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import assert_never

from rules import DialPlanError, DialPlanSet, load_dialplans
from rules.presence import PresenceState
from switch.addresses import parse_host_port
from switch.call.admission import LegBudget
from switch.call.trunkident import TrunkLine, line_from_json
from switch.control import messages as control
from switch.pjsua.endpoint import SipEndpoint
from switch.pjsua.epconfig import MAX_LEGS, EndpointConfig
from switch.worker.channel import ControlChannel
from switch.worker.config import WorkerConfig
from switch.worker.driver import CallDriver
from switch.worker.media import MediaServices
from switch.worker.ringback import TonePorts
from switch.worker.seam import SipLegs

log = logging.getLogger("switch.worker")

MAX_POLL_MS = 100
"""Longest ``libHandleEvents`` wait while a prompt, recording or ringback tone runs (their
ends come from the bridge's clock thread, which does not wake the poll)."""
IDLE_POLL_MS = 5000
"""Longest wait otherwise, calls held or none: a quiet worker wakes once in 5 s (issue 16:
~0.2 ms per empty round; at 100 ms that was 0.2 % of a core per worker, and 200 held
calls take 100 workers). SIP events end the wait (pjsua's ioqueue), call-flow timers
bound it, and a control message does not wait for it: the channel rings the endpoint's
doorbell (:meth:`SipEndpoint.wake`)."""
SHUTDOWN_DRAIN_S = 2.0


class Worker:
    """The process loop: poll the endpoint, drive calls, serve control messages, stop."""

    def __init__(
        self,
        config: WorkerConfig,
        endpoint: SipLegs,
        plans: DialPlanSet,
        channel: ControlChannel,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        media: MediaServices | None = None,
        tones: TonePorts | None = None,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.channel = channel
        self.media = media
        self.budget = LegBudget(
            MAX_LEGS, spare_leg=config.spare_leg, emergency_reserve=config.emergency_reserve
        )
        self.driver = CallDriver(
            config,
            endpoint,
            plans,
            self.budget,
            channel.send,
            clock=clock,
            media=media,
            tones=tones,
        )
        self._stop_at: int | None = None
        self._stopping = False
        self._last_legs = -1

    @property
    def capacity(self) -> int:
        """Legs this worker fills with calls; one fewer than pjsua's with ``spare_leg``."""
        return self.budget.capacity

    # ------------------------------------------------------------------ loop

    def request_stop(self, grace: float | None = None) -> None:
        """Take no new calls; end the process once calls are done or ``grace`` runs out."""
        grace = self.config.grace if grace is None else grace
        self.driver.draining = True
        deadline = time.monotonic_ns() + int(grace * 1e9)
        self._stop_at = deadline if self._stop_at is None else min(self._stop_at, deadline)

    def run(self) -> int:
        self.channel.send(control.Ready(self.config.name, self.config.sip, self.capacity))
        self._report_legs()
        while True:
            self.step()
            if self._stop_at is not None and self._maybe_stop():
                return 0

    def step(self) -> None:
        """One round: poll, feed what happened, fire timers, read control messages."""
        driver = self.driver
        events = self.endpoint.poll(self._poll_ms())
        self._read_control()  # first: an INVITE in this round sees the newest presence
        for event in events:
            driver.on_leg_event(event)
        driver.run_pending()
        driver.fire_timers()
        driver.queueing.fire_timers()  # issue 19: the callbacks' ring timeouts
        self._report_legs()

    def _poll_ms(self) -> int:
        if self.driver.busy:
            return 0
        longest = MAX_POLL_MS if self.driver.ticking else IDLE_POLL_MS
        deadline = self.driver.timers.next_deadline()
        if self._stop_at is not None:
            deadline = self._stop_at if deadline is None else min(deadline, self._stop_at)
        if deadline is None:
            return longest
        wait_ms = (deadline - time.monotonic_ns()) // 1_000_000 + 1
        return int(max(0, min(longest, wait_ms)))

    def _maybe_stop(self) -> bool:
        assert self._stop_at is not None
        calls = self.driver.calls
        if not calls:
            return True
        if time.monotonic_ns() < self._stop_at:
            return False
        if not self._stopping:
            self._stopping = True
            log.warning("worker %s: grace over, ending %d calls", self.config.name, len(calls))
            self.driver.shutdown()
            self._stop_at = time.monotonic_ns() + int(SHUTDOWN_DRAIN_S * 1e9)
            return False
        return True  # the last BYEs had their chance; close() hangs up the rest

    def _report_legs(self) -> None:
        in_use = self.endpoint.legs_in_use
        if in_use != self._last_legs:
            self._last_legs = in_use
            self.channel.send(control.Legs(in_use, self.capacity))

    # ------------------------------------------------------------------ control

    def _read_control(self) -> None:
        while True:
            try:
                message = self.channel.inbox.get_nowait()
            except queue.Empty:
                break
            try:
                self.on_control(message)
            except Exception:
                log.exception("control message %r failed", control.op_of(message))
        if self.channel.closed.is_set() and not self.driver.draining:
            log.warning("worker %s: control channel closed, draining", self.config.name)
            self.request_stop()

    def on_control(self, message: control.ToWorker) -> None:
        match message:
            case control.Presence(tenant, states):
                self.driver.presence[tenant] = {
                    person: PresenceState(state) for person, state in states.items()
                }
            case control.Forwarding(tenant, targets):
                self.driver.forwarding[tenant] = dict(targets)
            case control.Reload(paths):
                self._reload([Path(p) for p in paths] if paths is not None else None)
            case control.Drain():
                self.driver.draining = True
            case control.Stop(grace):
                self.request_stop(grace)
            case control.TransferCall(call_id, target, by):
                self.driver.outbound.console_transfer(call_id, target, by)
            case control.Originate():
                self.driver.originator.originate(message)
            case (
                control.QueueOffer()
                | control.QueueUpdate()
                | control.QueueGiveUp()
                | control.QueueCallBack()
            ):
                self.driver.queueing.on_message(message)  # issue 19
            case _:
                assert_never(message)

    def _reload(self, paths: list[Path] | None) -> None:
        try:
            plans = load_dialplans(paths if paths is not None else list(self.config.dialplans))
        except DialPlanError as exc:
            self.channel.send(control.ReloadFailed((str(exc),)))
            return
        self.driver.plans = plans
        if self.media is not None:
            self.media.prepare(plans)  # new announcements are made in the background
        self.channel.send(control.Reloaded(len(plans)))


# ----------------------------------------------------------------------- process main


def trunk_line(text: str) -> TrunkLine:
    try:
        return line_from_json(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_host_port(text)  # switch/addresses.py: the one host:port parser
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _route(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"route {text!r}: expected name=host:port")
    _address(address)
    return name, address


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m switch.worker", description=__doc__)
    parser.add_argument("--sip", type=_address, required=True, help="UDP host:port to listen on")
    parser.add_argument("--dialplans", type=Path, nargs="+", required=True)
    parser.add_argument("--control-fd", type=int, default=None)
    parser.add_argument("--name", default="w1")
    parser.add_argument("--route", type=_route, action="append", default=[])
    parser.add_argument("--trunk", default=None, help="host:port for tel: targets")
    parser.add_argument(
        "--trunk-line",
        type=trunk_line,
        action="append",
        default=[],
        help="a trunk as JSON: name, tenants, policy (switch/call/trunkident.py)",
    )
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--rtp-port", type=int, default=0)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="media services: announcements and voicemail under this directory",
    )
    parser.add_argument(
        "--spare-leg",
        action="store_true",
        help="keep one pjsua call slot free so that overflow gets 503, not pjsua's own 486",
    )
    parser.add_argument(
        "--emergency-reserve",
        type=int,
        default=0,
        choices=range(0, MAX_LEGS),
        metavar="LEGS",
        help="legs ordinary calls leave free, so that a 110/112 call always finds its legs",
    )
    parser.add_argument(
        "--media-bypass",
        action="store_true",
        help="bridged calls: RTP end to end, not through the pjsua2 bridge (mediapath.py)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, plans: DialPlanSet | None = None) -> int:
    """Run one worker. ``plans``: the dial plans compiled by the fork-server
    (:mod:`switch.worker.forkserver`) for exactly the ``--dialplans`` of ``argv``."""
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format=f"%(asctime)s {args.name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    host, port = args.sip
    config = WorkerConfig(
        name=args.name,
        host=host,
        port=port,
        dialplans=tuple(args.dialplans),
        routes=dict(args.route),
        trunk=args.trunk,
        trunks=tuple(args.trunk_line),
        grace=args.grace,
        spare_leg=args.spare_leg,
        emergency_reserve=args.emergency_reserve,
        data_dir=args.data_dir,
        media_bypass=args.media_bypass,
    )
    try:
        if plans is None:
            plans = load_dialplans(list(config.dialplans))
    except DialPlanError as exc:
        print(f"worker {config.name}: {exc}", file=sys.stderr)
        return 2
    channel = ControlChannel.from_fd(args.control_fd)
    endpoint = SipEndpoint(
        EndpointConfig(host=host, port=port, name=config.name, rtp_port=args.rtp_port)
    )
    try:
        endpoint.start()
    except Exception as exc:
        print(f"worker {config.name}: {exc}", file=sys.stderr)
        return 2
    media = None
    if config.data_dir is not None:
        media = MediaServices(config.data_dir, endpoint.media, channel.send)
        media.prepare(plans)  # prompts are made on a background thread, not here
    worker = Worker(config, endpoint, plans, channel, media=media, tones=endpoint.media)

    def stop(*_: object) -> None:
        worker.request_stop()
        endpoint.wake()  # the endpoint may be pumping RTP: its wait ends on a wake

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    # The handlers run on this thread, which may be waiting in the endpoint for seconds: the
    # signal's byte, written by any thread, rings the doorbell and ends that wait.
    signal.set_wakeup_fd(endpoint.doorbell_fd, warn_on_full_buffer=False)
    channel.wake = endpoint.wake  # a control message ends the endpoint's wait at once
    channel.start()
    profile_path = os.environ.get("RUFWEICHE_WORKER_PROFILE")
    try:
        if profile_path:  # for benchmarks: where the SIP thread spends its time
            import cProfile

            profiler = cProfile.Profile()
            code = profiler.runcall(worker.run)
            profiler.dump_stats(profile_path)
        else:
            code = worker.run()
    finally:
        signal.set_wakeup_fd(-1)
        if worker.driver.ringback is not None:
            worker.driver.ringback.close()  # its tone file's temporary directory
        endpoint.close()
        channel.close()
    log.info("worker %s: stopped", config.name)
    return code
