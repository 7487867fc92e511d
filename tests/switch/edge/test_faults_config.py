"""Issue 14, the pure parts: who is trusted by default, what the rendered edge says about
overload answers, bans and malformed packets, and how the edge's counters are read."""

from __future__ import annotations

from pathlib import Path

from rules import DialPlanSet
from switch.edge import render_config
from switch.edge.stats import htable_counter, malformed_total, parse_statistics
from switch.metrics import Metrics
from switch.supervisor.settings import Settings
from switch.supervisor.topology import edge_settings as derive_edge
from switch.supervisor.topology import worker_specs
from tests.helpers.edge import edge_settings


def loopback_pool(tmp_path: Path, **keys: object) -> Settings:
    return Settings.model_validate(
        {"sip": "127.0.0.1:5060", "workers": 2, "data_dir": tmp_path, **keys}
    )


def test_no_loopback_address_is_a_trunk_unless_the_operator_names_it(tmp_path: Path) -> None:
    derived = derive_edge(loopback_pool(tmp_path), DialPlanSet({}), [])
    assert derived.trunk_sources == ()
    named = loopback_pool(tmp_path, edge={"trunk_sources": ["127.0.0.1/32"]})
    assert derive_edge(named, DialPlanSet({}), []).trunk_sources == ("127.0.0.1/32",)


def test_spare_leg_only_when_asked_and_only_without_the_edge(tmp_path: Path) -> None:
    def args(**keys: object) -> tuple[str, ...]:
        settings = Settings.model_validate({"data_dir": tmp_path, **keys})
        return tuple(worker_specs(settings)[0].extra_args)

    assert "--spare-leg" not in args()
    assert "--spare-leg" in args(spare_leg=True, edge_mode="off")
    assert "--spare-leg" not in args(spare_leg=True, edge_mode="managed")


def test_every_edge_503_carries_retry_after_and_trusted_scanners_are_not_banned(
    tmp_path: Path,
) -> None:
    text = render_config(edge_settings(tmp_path, retry_after=7, trunk_sources=["192.0.2.1"]))
    assert '#!define RETRY_AFTER "Retry-After: 7\\r\\n"' in text
    # full, unreachable, paced, no ACK, failed, a full queue (issue 19)
    assert text.count('send_reply("503"') == 6
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if 'send_reply("503"' in line:
            assert "append_to_reply(RETRY_AFTER)" in lines[number - 1], line
    assert "scanner User-Agent from trusted $si, not banned" in text
    # The parse errors of hostile packets: not at ERROR with their content.
    assert 'modparam("debugger", "mod_level", "core=-2")' in text
    assert "sip_parser_log=3" in text


def test_unacked_cap_is_half_the_pool_unless_given(tmp_path: Path) -> None:
    workers = [{"uri": f"sip:127.0.0.1:{5070 + i}", "maxload": 2} for i in range(4)]
    assert edge_settings(tmp_path, workers=workers).unacked_limit == 4
    assert edge_settings(tmp_path, workers=workers[:1]).unacked_limit == 1
    assert edge_settings(tmp_path, workers=workers, unacked_per_source=9).unacked_limit == 9
    text = render_config(edge_settings(tmp_path, workers=workers))
    assert "#!define UNACKED_PER_SOURCE 4" in text


async def test_malformed_total_adds_bad_headers_sanity_400s_and_unparsable_packets() -> None:
    asked: list[tuple[str, ...]] = []

    async def rpc(method: str, *params: str) -> object:
        asked.append((method, *params))
        if method == "stats.get_statistics":
            return ["core:bad_msg_hdr = 60", "sl:400_replies = 120"]
        return [{"entry": 1, "size": 1, "slot": [{"name": "count", "value": 7, "type": "int"}]}]

    assert await malformed_total(rpc) == 187
    assert asked[0] == ("stats.get_statistics", "bad_msg_hdr", "400_replies")
    assert parse_statistics(["a:b = 3", "junk", "c:d = x"]) == {"a:b": 3}
    assert htable_counter([], "count") == 0
    assert htable_counter("nonsense", "count") == 0


def test_edge_malformed_metric_counts_on_across_an_edge_restart() -> None:
    metrics = Metrics()

    def value() -> float | None:
        return metrics.registry.get_sample_value("rufweiche_edge_malformed_total")

    assert value() == 0
    metrics.set_edge_malformed(180)
    metrics.set_edge_malformed(180)
    assert value() == 180
    metrics.set_edge_malformed(5)  # a new edge counts from 0 again
    assert value() == 185
