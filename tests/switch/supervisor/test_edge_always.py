"""The edge is always there (issue 15): pure checks of the settings and the worker slots."""

from __future__ import annotations

import ipaddress

import pytest

from switch.errors import SettingsError
from switch.supervisor.settings import load_settings
from switch.supervisor.topology import worker_specs


def test_the_default_runs_the_edge_in_front_of_one_worker_on_loopback() -> None:
    settings = load_settings(None)
    assert settings.workers == 1
    assert settings.edge_enabled
    (spec,) = worker_specs(settings)
    host, _, port = spec.sip.rpartition(":")
    assert ipaddress.ip_address(host).is_loopback
    assert spec.sip != settings.sip, "the edge owns the SIP address, the worker sits behind it"
    assert int(port) != settings.sip_endpoint().port


@pytest.mark.parametrize("mode", ["auto", "managed", "external"])
def test_every_mode_but_off_has_the_edge(mode: str) -> None:
    assert load_settings(None, {"edge_mode": mode}).edge_enabled


def test_a_bare_worker_owns_the_sip_address_on_loopback() -> None:
    settings = load_settings(None, {"edge_mode": "off", "sip": "127.0.0.1:5999"})
    assert not settings.edge_enabled
    assert [s.sip for s in worker_specs(settings)] == ["127.0.0.1:5999"]


@pytest.mark.parametrize("sip", ["192.0.2.10:5060", "0.0.0.0:5060", ":5060", "10.0.0.1:5060"])
def test_a_bare_worker_on_a_network_address_is_refused(sip: str) -> None:
    with pytest.raises(SettingsError, match="loopback"):
        load_settings(None, {"edge_mode": "off", "sip": sip})


@pytest.mark.parametrize("listen", ["192.0.2.10:5070", "0.0.0.0:5070", "100.64.0.1:5070"])
def test_workers_listen_beyond_loopback_is_refused(listen: str) -> None:
    with pytest.raises(SettingsError, match="workers_listen"):
        load_settings(None, {"workers": 2, "workers_listen": listen})


def test_workers_listen_on_loopback_is_allowed() -> None:
    settings = load_settings(
        None, {"workers": 2, "edge_mode": "off", "workers_listen": "127.0.0.1:7000"}
    )
    assert [s.sip for s in worker_specs(settings)] == ["127.0.0.1:7000", "127.0.0.1:7001"]
