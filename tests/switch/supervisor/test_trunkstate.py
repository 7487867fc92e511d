"""TrunkMonitor (pure): uac.reg_dump answers → states, the dashboard's rows, the last error."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from switch.access.policy import Scope
from switch.edge.trunks import NumberBlock, Trunk, TrunksSettings
from switch.metrics import LatencyWindow
from switch.supervisor.trunkstate import FLAG_ONGOING, FLAG_ONLINE, TrunkMonitor
from switch.web.dashboard import DashboardState, narrow


def monitor(seen: list[list[dict[str, Any]]]) -> TrunkMonitor:
    trunk = Trunk(
        name="sipgate",
        registrar="sipconnect.sipgate.de",
        username="1234567t0",
        numbers=(NumberBlock(prefix="+4923319876540", tenant="mueller"),),
    )

    async def rpc(*_: Any) -> Any:
        return []

    return TrunkMonitor(
        TrunksSettings(accounts=(trunk,)), rpc, CollectorRegistry(), on_change=seen.append
    )


def test_a_failure_leaves_a_last_error_that_outlives_the_recovery() -> None:
    seen: list[list[dict[str, Any]]] = []
    mon = monitor(seen)
    mon.update([{"l_uuid": "sipgate", "flags": FLAG_ONGOING}])
    mon.update([{"l_uuid": "sipgate", "flags": 0}])  # not online, not ongoing: failed
    (row,) = seen[-1]
    assert (row["name"], row["state"], row["registered"]) == ("sipgate", "failed", False)
    assert row["tenants"] == ["mueller"]
    assert "registration at sipconnect.sipgate.de failed" in row["last_error"]
    failed_at = row["last_error_at"]
    mon.update([{"l_uuid": "sipgate", "flags": FLAG_ONLINE, "expires": 600}])
    (row,) = seen[-1]
    assert (row["state"], row["registered"]) == ("registered", True)
    assert row["last_error_at"] == failed_at  # still shown after it recovered
    changes = len(seen)
    mon.update([{"l_uuid": "sipgate", "flags": FLAG_ONLINE, "expires": 600}])
    assert len(seen) == changes  # no change, no push


def test_the_dashboard_shows_a_trunk_only_to_its_tenants() -> None:
    seen: list[list[dict[str, Any]]] = []
    mon = monitor(seen)
    state = DashboardState(window=LatencyWindow())
    state.set_trunks(mon.rows())
    snap = state.snapshot(1_800_000_000.0)
    assert [t["name"] for t in snap["trunks"]] == ["sipgate"]
    assert narrow(snap, Scope(tenants=frozenset({"mueller"})))["trunks"] == snap["trunks"]
    assert narrow(snap, Scope(tenants=frozenset({"other"})))["trunks"] == []
