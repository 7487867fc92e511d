"""What one worker's pjsua2 endpoint is configured with: EndpointConfig, the library's
``EpConfig`` (threads, log, the conference bridge and jitter buffer) and the account.

The endpoint (switch/pjsua/endpoint.py) does things; this module only decides how pjsua2
is set up, so that a figure of bench/media_path.py or bench/worker_memory.py can be traced
to one line here.
"""

from __future__ import annotations

import ctypes
import random
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

MAX_LEGS = 4
"""PJSUA_MAX_CALLS of the pjsua2-python wheel: maxCalls above it is silently clamped."""


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    host: str
    port: int
    name: str = "w1"
    user_agent: str = "Rufweiche"
    rtp_port: int = 0  # 0: a random even base below the ephemeral range, per process
    rtp_port_range: int = 1000


def endpoint_config(cfg: EndpointConfig, writer: Any) -> Any:
    """The ``pj.EpConfig`` for :meth:`SipEndpoint.start`; ``writer`` gets the log lines."""
    ep_cfg = pj.EpConfig()
    ua = ep_cfg.uaConfig
    ua.threadCnt = 0  # we poll from our own thread
    ua.mainThreadOnly = False
    ua.maxCalls = MAX_LEGS
    ua.userAgent = cfg.user_agent
    logc = ep_cfg.logConfig
    logc.writer = writer
    logc.level = 2  # warnings and errors only: the hot path formats nothing else
    # pjsua hands a line to the writer only up to consoleLevel; with a writer set
    # nothing reaches the console itself.
    logc.consoleLevel = 2
    logc.decor = 0  # no time/sender columns: Python logging adds its own
    logc.msgLogging = 0
    _media(ep_cfg.medConfig)
    return ep_cfg


def _media(med: Any) -> None:
    # DESIGN.md "Facts": bridge at 8 kHz with 10 ms frames and a jitter buffer without
    # prefetch cut the bridge's one-way delay from +33 ms to +19 ms p99.
    med.clockRate = 8000
    med.sndClockRate = 8000
    med.audioFramePtime = 10
    # Issue 16, bench/media_path.py: with jbMax 200 / jbMaxPre 40 and pjmedia's progressive
    # discard, each call settled at its own level (+22/+30/+36 ms p50 in three calls, p99 up
    # to +73 ms): what the buffer took in while a call's media came up stayed in it. A small
    # maximum and the static discard keep it near the floor (+22.2 ms p50 / +23.5 p99, the
    # three calls within 2 ms of each other).
    med.jbInit = 0
    med.jbMinPre = 0
    med.jbMaxPre = 20
    med.jbMax = 60
    _set_discard(med, JB_DISCARD_STATIC)
    med.ecTailLen = 0  # no echo canceller: there is no sound device
    # VAD stays on (pjsua's default): a bypassed leg's own stream must fall silent after
    # 600 ms (PJMEDIA_STREAM_VAD_SUSPEND_MSEC, docs/architecture.md "Media path"); it
    # decides per frame and adds no delay.
    # RTP on the SIP ioqueue, polled by the endpoint's own thread (SipEndpoint.poll):
    # pjmedia's media thread polls its ioqueue with a fixed 10 ms timeout, 100 wake-ups
    # a second in every worker, idle or bypassed (issue 16, docs/performance.md).
    med.threadCnt = 0
    med.hasIoqueue = False


JB_DISCARD_STATIC = 1
"""pjmedia_jb_discard_algo: 0 none, 1 static, 2 progressive (pjmedia's default)."""


def _set_discard(med: Any, algo: int) -> None:
    """``MediaConfig.jbDiscardAlgo``: the wheel wraps the enum only as a pointer (its getter
    returns a copy), so the value is written into that copy and the copy set back."""
    value = med.jbDiscardAlgo
    ctypes.c_int.from_address(int(value)).value = algo
    med.jbDiscardAlgo = value
    _KEPT.append(value)  # SWIG has no destructor for it and says so on stderr when collected


_KEPT: list[Any] = []


def account_config(cfg: EndpointConfig) -> Any:
    acc_cfg = pj.AccountConfig()
    acc_cfg.idUri = f"sip:{cfg.name}@{cfg.host}:{cfg.port}"
    acc_cfg.mediaConfig.transportConfig.boundAddress = cfg.host
    # pjsua's default base (4000) is shared by every worker on the host, so each new call
    # first collided with its neighbours' sockets; a random base per process keeps them
    # apart (pjsua still skips a port that is taken).
    rtp_port = cfg.rtp_port or random.randrange(10000, 30000, 2)
    acc_cfg.mediaConfig.transportConfig.port = rtp_port
    acc_cfg.mediaConfig.transportConfig.portRange = cfg.rtp_port_range
    # pjsua would re-INVITE after answer to lock one codec: an extra round trip that some
    # phones answer badly. Each leg keeps what it negotiated.
    acc_cfg.mediaConfig.lockCodecEnabled = False
    return acc_cfg


__all__ = ["MAX_LEGS", "EndpointConfig", "account_config", "endpoint_config"]
