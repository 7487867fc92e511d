"""Issue 14, item 12 (the supervisor's part): a dial-plan reload never stalls the loop.

The whole switch runs (``python -m switch run``); a legal but slow plan (1.8 MB, one
caller list of 95,000 numbers: several seconds to validate) is dropped into its
dial-plan folder; while the watcher reloads it, ``/healthz`` is asked every 50 ms over
real HTTP and must answer each time within a generous bound. :meth:`Supervisor.reload`
parses in a worker thread (``asyncio.to_thread(load_dialplans, …)``); parsing on the
loop would hold every answer for the seconds the parse takes.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.timeout(90)]

REPO_PLANS = Path(__file__).parents[3] / "dialplans"
BOUND_S = 0.5  # generous: the machine is shared; a parse on the loop holds it for seconds


def slow_plan() -> str:
    base = (REPO_PLANS / "tischlerei-mueller.yaml").read_text(encoding="utf-8")
    numbers = ", ".join(f'"+49 351 {1_000_000 + i}"' for i in range(95_000))
    plan = base.replace("tenant: tischlerei-mueller", "tenant: gross-gmbh")
    plan = plan.replace('numbers: ["+49 2331 987654-0"]', 'numbers: ["+49 351 9999999"]')
    return plan.replace(
        'vip: ["+49 171 5550100"]', f'vip: ["+49 171 5550100"]\n  many: [{numbers}]'
    )


def timed_health(url: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 while not ready: still an answer
        body = json.loads(exc.read())
    return time.perf_counter() - started, body


def test_healthz_answers_while_a_huge_plan_is_reloaded(tmp_path: Path, make_switch: Any) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "mueller.yaml").write_text(
        (REPO_PLANS / "tischlerei-mueller.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    switch = make_switch(plans)
    text = slow_plan()
    assert 1_000_000 < len(text.encode()) < 2 * 1024 * 1024  # legal: under the 2 MB limit
    (plans / "gross.yaml").write_text(text, encoding="utf-8")
    latencies: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        latency, body = timed_health(switch.url)
        latencies.append(latency)
        if body["detail"]["dial_plans"]["tenants"] == 2:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the plan was not reloaded:\n{switch.output()[-3000:]}")
    reload_ms = [line for line in switch.output().splitlines() if "dial plans reloaded" in line]
    assert reload_ms, switch.output()[-3000:]
    print(
        f"{len(latencies)} /healthz answers during the reload, max {max(latencies) * 1000:.0f} ms;"
    )
    print(reload_ms[-1])
    assert len(latencies) > 10  # the reload took seconds, and the loop answered meanwhile
    assert max(latencies) < BOUND_S
