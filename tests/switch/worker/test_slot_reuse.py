"""Back-to-back calls into one worker (issue 16): pjsua frees a call's slot a moment after
it reported the call ended, and a dial in that moment met PJ_ETOOMANY; the caller then got
480 "Nobody answered" (bench/concurrency.py: 8 of 591 new calls). SipEndpoint.dial waits
for the slot instead. Real peers: the worker process and bench/rtpload.py's SIP caller
and callee on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.concurrency import PLAN
from bench.rtpload import SHORT_DEVICE, Generator
from tests.helpers.worker import WorkerProcess

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(90)]

NUMBER = "+493012345679"


async def test_back_to_back_calls_never_fail_on_a_slot_being_freed(tmp_path: Path) -> None:
    async with Generator(("127.0.0.1", 0), NUMBER) as gen:
        plan = tmp_path / "churn.yaml"
        plan.write_text(
            PLAN.format(tenant="churn", number=NUMBER, user=SHORT_DEVICE, uas_port=gen.uas_port)
        )
        worker = WorkerProcess(tmp_path, [plan])
        try:
            await asyncio.to_thread(worker.start)
            gen.target = ("127.0.0.1", worker.port)
            loop = asyncio.get_running_loop()
            held = await gen.call(short=True)  # one call held all along: 2 of the 4 legs
            assert held.setup_s is not None, "the held call was not answered"
            # The other 2 legs: each short call is hung up just when the next one comes in
            # (one every 250 ms, held 247 ms), so its legs end in the moment of the dial.
            short = await gen.short_calls(4.0, loop.time() + 10.0, hold=0.247)
            await gen.bye(held)
        finally:
            await asyncio.to_thread(worker.stop)
    failed_by = short["failed_by"]
    assert short["placed"] - short["failed"] >= 20, short
    # A full worker answers 503 (its leg budget) or pjsua's own stateless 486 (every slot
    # held, the INVITE never reaches us): the edge takes both as "worker full" and tries
    # the next worker. Never 480 "Nobody answered" for a slot of its own.
    assert "480" not in failed_by, (failed_by, worker.log_text()[-2000:])
    assert set(failed_by) <= {"503", "486"}, failed_by
    assert "' failed: pjsua_call_make_call" not in worker.log_text(), "a dial gave up"
