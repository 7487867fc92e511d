"""A per-person outbound limit hit in a real worker reaches the supervisor's audit log.

``python -m switch run`` (one bare worker) with a plan allowing 1 call per hour: a SIPp
desk phone calls extension 202 (a SIPp target) twice; the second INVITE gets 403 with the
limit as Reason, the worker reports ``limit_hit`` over the control channel and the
supervisor writes an ``outbound_limit`` line into var/audit.jsonl.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.ports import LOOPBACK, free_port
from tests.helpers.processes import running
from tests.helpers.sipp import Sipp
from tests.helpers.switch import Switch
from tests.helpers.transfer import mueller_plan, ok, sipp
from tests.helpers.worker import write_plan

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(60)]


def test_the_calls_per_hour_limit_is_audited_by_the_supervisor(
    tmp_path: Path, make_switch: Callable[..., Switch]
) -> None:
    target = sipp(tmp_path, "target", "uas_answer.xml")
    desk = f"{LOOPBACK}:{(desk_port := free_port())}"  # both calls come from this port
    plans = tmp_path / "plans"
    plans.mkdir()
    write_plan(
        plans / "mueller.yaml",
        mueller_plan(
            {"desk": f"sip:desk@{desk}", "other": f"sip:202@{target.address}"},
            more="outbound: {calls_per_hour: 1}",
            rules="  - {name: office, then: [{ring: [jan.desk], timeout: 10s}]}",
        ),
    )
    switch = make_switch(plans)
    first = Sipp(
        tmp_path,
        "first",
        "uac_call.xml",
        [
            f"{LOOPBACK}:{switch.sip_port}",
            *("-s", "202", "-key", "caller", "desk", "-d", "300"),
            *("-m", "1", "-timeout", "20", "-timeout_error"),
        ],
        port=desk_port,
    )
    second = Sipp(
        tmp_path,
        "second",
        "uac_final.xml",
        [f"{LOOPBACK}:{switch.sip_port}", "-s", "202", "-key", "caller", "desk", "-m", "1"],
        port=desk_port,
    )
    with running(target, first, second):
        target.start()
        target.wait_bound()
        first.start()
        ok(first, target)
        second.start()
        second.wait(20)
        answer = second.received("SIP/2.0 403")[0]
        assert re.search(
            r'^Reason: SIP;cause=403;text="Limit reached: 1 calls per hour', answer, re.M
        )
        assert len(target.received("INVITE")) == 1  # the second call never left
        audit = tmp_path / "var" / "audit.jsonl"
        deadline = time.monotonic() + 10
        lines: list[dict[str, object]] = []
        while time.monotonic() < deadline and not lines:
            if audit.exists():
                entries = [json.loads(x) for x in audit.read_text().splitlines() if x]
                lines = [e for e in entries if e["event"] == "outbound_limit"]
            time.sleep(0.1)
        assert lines, switch.output()[-3000:]
        (line,) = lines
        assert line["who"] == "jan"
        assert line["tenant"] == "mueller"
        assert line["ok"] is False
        assert line["reason"] == "Limit reached: 1 calls per hour"
        assert line["call_class"] == "internal"
        assert line["from"]  # the worker that stopped it
