"""The endpoint's process-wide pjsua2 set-up pieces (switch/pjsua/endpoint.py): the codec
priorities, a quiet stdout while libCreate runs, the log writer into Python logging, and
the pjsua2 Endpoint and Account subclasses whose callbacks the endpoint needs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pjsua2 as pj

from switch.pjsua.epconfig import MAX_LEGS

log = logging.getLogger("switch.pjsua")

# Codec priorities: G.711 first (every phone and trunk has it), G.722 for wideband phones.
# The rest are switched off so that SDP offers stay small and nobody negotiates GSM.
CODEC_PRIORITIES = {"PCMA/8000/1": 250, "PCMU/8000/1": 249, "G722/16000/1": 240}


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """File descriptor 1 to /dev/null for the block (libCreate prints a banner)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class LogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsua2 log lines into Python logging; the endpoint only emits warnings and errors."""

    def write(self, entry: Any) -> None:
        try:
            text = str(entry.msg).rstrip()
            level = logging.ERROR if entry.level <= 1 else logging.WARNING
            if "Address already in use" in text:
                level = logging.DEBUG  # pjsua moves on to the next RTP port by itself
            elif "PJ_ETOOMANY" in text:
                level = logging.DEBUG  # a slot still being freed: SipEndpoint.dial retries
            log.log(level, "pjsip: %s", text)
        except Exception:  # never raise into pjsua2 (it may be the clock thread)
            pass


class CountingEndpoint(pj.Endpoint):  # type: ignore[misc]
    """Counts the INVITEs pjsua turned away itself (486 when every call slot is in use)."""

    def __init__(self) -> None:
        super().__init__()
        self.rejected_by_pjsua = 0

    def onRejectedIncomingCall(self, prm: Any) -> None:  # pjsua2 callback name
        try:
            self.rejected_by_pjsua += 1
            status = int(prm.statusCode)
            why = f" (all {MAX_LEGS} call slots in use)" if status == 486 else ""
            log.warning("pjsua rejected an INVITE itself: %d %s%s", status, prm.reason, why)
        except Exception:  # never raise into pjsua2
            pass


class SlotAccount(pj.Account):  # type: ignore[misc]
    """The endpoint's one account: hands each incoming INVITE to ``SipEndpoint._incoming``."""

    def __init__(self, endpoint: Any) -> None:
        super().__init__()
        self._endpoint = endpoint

    def onIncomingCall(self, prm: Any) -> None:
        at = time.monotonic_ns()
        try:
            self._endpoint._incoming(self, prm, at)
        except Exception:
            log.exception("incoming call callback failed")


__all__ = ["CODEC_PRIORITIES", "CountingEndpoint", "LogWriter", "SlotAccount", "quiet_stdout"]
