"""docker/: the compose file, Dockerfile, Prometheus and Grafana files fit together and
name only metrics that the switch's registry exposes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from switch.metrics import Metrics
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
    cmd = json.loads(next(line for line in lines if line.startswith("CMD"))[3:])
    assert entry == ["rufweiche"]
    assert cmd[0] == "run"
    # Every option the image passes is one that `rufweiche run` knows.
    from switch.cli import main

    run = main.commands["run"]
    known = {opt for param in run.params for opt in getattr(param, "opts", [])}
    passed = {arg for arg in cmd[1:] if arg.startswith("--")}
    assert passed <= known, passed - known
    http = cmd[cmd.index("--http") + 1]
    assert http.endswith(":8080")


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
