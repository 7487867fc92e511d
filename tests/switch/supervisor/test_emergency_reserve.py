"""The emergency reserve from the settings: the workers keep legs, the edge offers fewer calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import DialPlanSet
from switch.call.admission import WORKER_LEGS, LegBudget, calls_per_worker
from switch.errors import SettingsError
from switch.supervisor.settings import load_settings
from switch.supervisor.topology import edge_settings, worker_specs


def test_the_supervisor_counts_the_legs_the_wheel_has() -> None:
    endpoint = pytest.importorskip("switch.pjsua.endpoint")
    assert endpoint.MAX_LEGS == WORKER_LEGS


@pytest.mark.parametrize(("reserve", "calls"), [(0, 2), (1, 1), (2, 1)])
def test_edge_maxload_leaves_the_reserve_free(reserve: int, calls: int) -> None:
    assert calls_per_worker(reserve) == calls
    budget = LegBudget(WORKER_LEGS, emergency_reserve=reserve)
    in_use = 2 * calls + 1  # every call the edge offered is bridged; then a 112 INVITE
    # Without a reserve a full worker has no leg left for it (docs/operations.md).
    assert budget.admits_emergency(in_use) == (reserve > 0)
    assert not budget.admits(in_use)  # an ordinary call beyond maxload is refused


def test_settings_switch_the_reserve_on_for_workers_and_edge(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("workers: 2\nemergency_reserve: 1\n", encoding="utf-8")
    settings = load_settings(path, {"data_dir": tmp_path})
    specs = worker_specs(settings)
    for spec in specs:
        args = list(spec.extra_args)
        assert args[args.index("--emergency-reserve") + 1] == "1"
    derived = edge_settings(settings, DialPlanSet({}), specs)
    assert [w.maxload for w in derived.workers] == [1, 1]
    plain = load_settings(None, {"data_dir": tmp_path, "workers": 2})
    assert "--emergency-reserve" not in worker_specs(plain)[0].extra_args
    assert edge_settings(plain, DialPlanSet({}), worker_specs(plain)).workers[0].maxload == 2


def test_a_reserve_larger_than_a_worker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("emergency_reserve: 3\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"settings\.yaml:1:\d+: emergency_reserve"):
        load_settings(path)
