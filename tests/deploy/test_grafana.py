"""The Grafana dashboard and the Prometheus alert rules (deploy/grafana/, deploy/prometheus/),
validated offline: the JSON loads and is a well-formed dashboard on the provisioned data
source, compose mounts what Grafana reads, every documented metric has a panel, and every
metric an expression uses is one the application really exports: the names are read from the
real ``/metrics`` output of this code (Django test client, real PostgreSQL for the gauges).
Also: the Kubernetes autoscaler scales out before a pod reaches its call cap.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "triage.json"
METRIC = re.compile(r"\btriage_\w+")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def grafana_exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


@pytest.fixture
def exported(db, settings) -> set[str]:
    """Every sample name the app's /metrics can produce: from its ``# TYPE`` lines (a counter or
    histogram with no observation yet still declares itself there)."""
    settings.METRICS_TOKEN = "test-scrape-token"
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer test-scrape-token")
    assert response.status_code == 200
    names = set()
    for name, kind in re.findall(r"^# TYPE (\w+) (\w+)$", response.content.decode(), re.M):
        match kind:
            case "counter":
                names |= {name if name.endswith("_total") else f"{name}_total"}
            case "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            case _:
                names.add(name)
    return names


def test_the_dashboard_is_well_formed_on_the_provisioned_data_source():
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    source = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (prometheus,) = source["datasources"]
    assert prometheus["type"] == "prometheus" and prometheus["url"] == "http://prometheus:9090"
    for panel in panels():
        assert panel["title"] and panel["targets"], panel
        assert panel["datasource"] == {"type": "prometheus", "uid": prometheus["uid"]}
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == prometheus["uid"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_compose_runs_grafana_with_the_provisioning_and_the_dashboards():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    assert "prometheus" in grafana["depends_on"]
    mounts = dict(v.removesuffix(":ro").split(":") for v in grafana["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "triage.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./grafana/dashboards"]
    for source in mounts:
        assert (DEPLOY / source).is_dir(), source
    assert "GRAFANA_ADMIN_PASSWORD" in grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]  # not in the file


def test_every_documented_metric_has_a_panel():
    documented = set(re.findall(r"^\| `(triage_\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.M))
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in grafana_exprs() for m in METRIC.findall(e)}
    assert documented and documented <= used, documented - used


@pytest.mark.services  # triage_calls_waiting is read from Redis
def test_every_expression_uses_metrics_the_app_exports(exported):
    assert {"triage_calls_waiting", "triage_admissions_total", "triage_queue_wait_seconds_bucket"} <= exported
    for expr in grafana_exprs() + alert_exprs():
        used = set(METRIC.findall(expr))
        assert used <= exported, (expr, used - exported)


def test_promtool_accepts_the_alert_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    check = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_autoscaler_scales_out_before_the_pods_call_cap_is_reached():
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "web.yaml").read_text()))
    web = next(d for d in docs if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][
        0
    ]
    cap = int(next(e["value"] for e in web["env"] if e["name"] == "TRIAGE_MAX_CALLS"))
    (hpa,) = [d for d in docs if d and d["kind"] == "HorizontalPodAutoscaler"]
    target = float(hpa["spec"]["metrics"][0]["external"]["target"]["averageValue"])
    assert 0 < target < cap
