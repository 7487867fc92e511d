"""The fork-server's plan cache (switch/worker/plancache.py) follows an edited file."""

from __future__ import annotations

import os
from pathlib import Path

from switch.worker.plancache import PlanCache
from tests.helpers.switch import plan_text


def test_an_edited_plan_is_compiled_again(tmp_path: Path) -> None:
    plan = tmp_path / "test.yaml"
    plan.write_text(plan_text("sip:desk@127.0.0.1:9", "before"))
    cache = PlanCache()
    first = cache.load([tmp_path])
    assert first is not None
    assert cache.load([tmp_path]) is first, "unchanged files: the same compiled set"
    plan.write_text(plan_text("sip:desk@127.0.0.1:9", "after"))
    st = plan.stat()
    os.utime(plan, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache.get([tmp_path]) is None, "an edit invalidates the cached set"
    second = cache.load([tmp_path])
    assert second is not None
    assert second is not first


def test_a_broken_plan_is_not_cached(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("tenant: [\n")
    cache = PlanCache()
    assert cache.load([tmp_path]) is None
    assert cache.get([tmp_path]) is None
