"""docker/: the compose file, Dockerfile, Prometheus and Grafana files fit together and
name only metrics that the switch's registry exposes."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from switch.metrics import Metrics
from switch.supervisor.settings import load_settings
from tests.helpers.processes import run_ok

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
METRIC = re.compile(r"\brufweiche_[a-z_]+\b")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def grafana_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DOCKER / "grafana/dashboards/rufweiche.json").read_text())
    return data


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(DOCKER / "prometheus/alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_compose_services_and_mounts_exist() -> None:
    compose = load_yaml(DOCKER / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"switch", "mosquitto", "prometheus", "grafana"}
    build = services["switch"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):  # a bind mount: the file must be in the repository
                assert (DOCKER / source).exists(), f"{name} mounts missing {source!r}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source!r}"
    assert "8080:8080/tcp" in services["switch"]["ports"]


def test_dockerfile_installs_the_package_and_runs_unprivileged() -> None:
    lines = [
        line.strip()
        for line in (DOCKER / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"COPY source {source!r} missing"
    entry = json.loads(next(line for line in lines if line.startswith("ENTRYPOINT"))[10:])
    cmd = json.loads(next(line for line in lines if line.startswith("CMD ["))[3:])
    assert entry == ["rufweiche-container"]
    assert "COPY docker/entrypoint.sh /usr/local/bin/rufweiche-container" in lines
    assert cmd == ["run"]
    # The edge and the media relay run in the container: the packages `make run` installs.
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    apt_run = re.search(r"^APT_RUN := (.*)$", makefile, re.MULTILINE)
    assert apt_run is not None
    install = next(line for line in lines if "apt-get install" in line).split()
    assert set(apt_run.group(1).split()) <= set(install)


def _entrypoint(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """Run docker/entrypoint.sh with a stand-in ``rufweiche`` that prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "rufweiche"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUFWEICHE_IP": "172.18.0.5"}
    environment |= {"RUFWEICHE_SETTINGS": str(DOCKER / "settings.yaml")}
    environment |= {"RUFWEICHE_DATA": str(tmp_path), **env}
    out = run_ok([str(DOCKER / "entrypoint.sh"), *args], env=environment, timeout=10)
    return out.splitlines()


def test_the_entrypoint_runs_the_switch_on_the_containers_address(tmp_path: Path) -> None:
    from switch.cli import main

    argv = _entrypoint(tmp_path, "run", "--log-level", "debug")
    settings = str(DOCKER / "settings.yaml")
    assert argv == [
        "run",
        "--settings",
        settings,
        "--sip",
        "172.18.0.5:5060",
        "--log-level",
        "debug",
    ]
    other = _entrypoint(tmp_path, "report", "--month", "2026-11")
    assert other == ["report", "--month", "2026-11"]  # any other command: rufweiche itself
    run = main.commands["run"]
    known = {opt for param in run.params for opt in getattr(param, "opts", [])}
    assert {arg for arg in argv if arg.startswith("--")} <= known


def test_the_entrypoint_advertises_the_host(tmp_path: Path) -> None:
    argv = _entrypoint(tmp_path, "run", RUFWEICHE_ADVERTISE="203.0.113.7:5060")
    assert argv[:3] == ["run", "--settings", str(tmp_path / "settings.yaml")]
    settings = load_settings(tmp_path / "settings.yaml")
    assert settings.edge.advertise == "203.0.113.7:5060"
    assert settings.edge.media_relay == load_settings(DOCKER / "settings.yaml").edge.media_relay


def test_the_containers_settings_fit_the_published_ports() -> None:
    settings = load_settings(DOCKER / "settings.yaml")
    relay = settings.edge.media_relay
    compose = load_yaml(DOCKER / "compose.yaml")
    published = f"{relay.port_min}-{relay.port_max}:{relay.port_min}-{relay.port_max}/udp"
    assert published in compose["services"]["switch"]["ports"]
    assert f"{relay.port_min}-{relay.port_max}/udp" in (DOCKER / "Dockerfile").read_text()
    assert relay.mode == "on"
    assert relay.calls() >= 2 * settings.workers
    assert settings.http.endswith(":8080")
    assert compose["services"]["switch"]["ulimits"]["rtprio"] == relay.realtime_priority


def test_prometheus_scrapes_the_switch_and_loads_the_rules() -> None:
    config = load_yaml(DOCKER / "prometheus/prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["switch:8080"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = load_yaml(DOCKER / "compose.yaml")
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_alerts_cover_the_budgets() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    expressions = " ".join(rule["expr"] for rule in rules.values())
    assert 'rufweiche_added_delay_seconds_bucket{hop="invite"}' in expressions
    assert "> 0.005" in rules["RufweicheAddedInviteDelayHigh"]["expr"]
    assert "> 3" in rules["RufweichePostDialDelayHigh"]["expr"]
    assert "< 3.6" in rules["RufweicheMosLow"]["expr"]
    assert "rufweiche_worker_up == 0" in rules["RufweicheWorkerDown"]["expr"]


def test_every_metric_named_in_alerts_and_grafana_exists() -> None:
    exposed = Metrics().metric_names
    named: set[str] = set()
    for rule in alert_rules():
        named |= set(METRIC.findall(rule["expr"]))
    dashboard = grafana_dashboard()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            named |= set(METRIC.findall(target["expr"]))
    assert len(named) >= 10
    assert named <= exposed, sorted(named - exposed)


def test_grafana_provisioning_fits_the_dashboard() -> None:
    datasource = load_yaml(DOCKER / "grafana/provisioning/datasources/prometheus.yml")
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    provider = load_yaml(DOCKER / "grafana/provisioning/dashboards/rufweiche.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = grafana_dashboard()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {source["uid"]}
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for figure in ("Added delay per hop", "Post-dial delay", "MOS", "Jitter"):
        assert figure in titles


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_rules_and_config(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = run_ok([PROMTOOL, "check", "rules", str(DOCKER / "prometheus/alerts.yml")], timeout=30)
    assert "SUCCESS: 5 rules found" in rules
    # The config names the rules where the container mounts them: point it at the copy.
    shutil.copy(DOCKER / "prometheus/alerts.yml", tmp_path / "alerts.yml")
    config = (DOCKER / "prometheus/prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml"))
    )
    run_ok([PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")], timeout=30)


def test_without_an_address_given_the_entrypoint_takes_the_containers_own(
    tmp_path: Path,
) -> None:
    argv = _entrypoint(tmp_path, "run", RUFWEICHE_IP="")
    host, port = argv[argv.index("--sip") + 1].rsplit(":", 1)
    assert ipaddress.ip_address(host).version == 4
    assert port == "5060"
