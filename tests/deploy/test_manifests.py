"""The deploy kit, validated offline (no images can be pulled here): the Kubernetes manifests
against the API schemas shipped in kubernetes-validate, the compose file, Prometheus rules and
the Dockerfile against what the code and the other deploy files say."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30"


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d["kind"] == kind]


def web_deployment() -> dict:
    return next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "triage-web")


def drain_seconds_default() -> float:
    source = (ROOT / "config" / "settings.py").read_text()
    return float(re.search(r'"TRIAGE_DRAIN_SECONDS", "(\d+)"', source).group(1))


@pytest.mark.parametrize("doc", k8s_docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_matches_the_kubernetes_schema(doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_manifest():
    broken = copy.deepcopy(web_deployment())
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = copy.deepcopy(web_deployment())
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # misspelt: strict refuses
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_web_pods_probe_readyz_and_outlast_the_drain():
    pod = web_deployment()["spec"]["template"]["spec"]
    web = pod["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    drain = float(next(e["value"] for e in web["env"] if e["name"] == "TRIAGE_DRAIN_SECONDS"))
    assert drain == drain_seconds_default()
    pre_stop = int(web["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > drain + pre_stop  # never killed mid-drain
    node_id = next(e for e in web["env"] if e["name"] == "TRIAGE_NODE_ID")
    assert node_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # one name per pod


def test_service_pdb_hpa_and_ingress_point_at_the_web_pods():
    labels = web_deployment()["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in web_deployment()["spec"]["template"]["spec"]["containers"][0]["ports"]}
    (service,) = by_kind("Service")
    assert service["spec"]["selector"] == labels
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    (pdb,) = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "triage-web"
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
    assert f"`{metric}`" in (ROOT / "docs" / "metrics.md").read_text()  # a metric we export
    (ingress,) = by_kind("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$uri"


def test_exactly_one_beat():
    beat = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "triage-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_compose_layout_matches_the_load_balancer_and_the_drain():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web1", "web2", "worker", "beat", "lb", "postgres", "redis", "prometheus"} <= set(services)
    lb_env = services["lb"]["environment"]
    assert {lb_env["TRIAGE_WEB1"].split(":")[0], lb_env["TRIAGE_WEB2"].split(":")[0]} == {"web1", "web2"}
    for name in ("web1", "web2"):
        assert services[name]["environment"]["TRIAGE_NODE_ID"] == name
        assert int(services[name]["stop_grace_period"].rstrip("s")) > drain_seconds_default()
    config = "\n".join(
        line
        for line in (DEPLOY / "haproxy.cfg").read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    config_vars = set(re.findall(r'"\$\{(\w+)\}"', config))
    assert config_vars == set(lb_env)  # every address haproxy.cfg reads is set


def test_the_image_runs_what_the_units_run():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    unit = (DEPLOY / "systemd" / "triage-web.service").read_text()
    exec_start = re.search(r"^ExecStart=\S+/python (.*)$", unit, re.M).group(1).split()
    assert cmd[1:] == [*exec_start[:3], "0.0.0.0", *exec_start[4:]]  # same command, all interfaces
    web = web_deployment()["spec"]["template"]["spec"]["containers"][0]
    assert web["command"] == cmd
    for path in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        for item in path.split():
            assert (ROOT / item).exists(), item


def test_prometheus_rules_use_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    documented = set(re.findall(r"^\| `(triage_\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.M))
    used = set()
    for rule in rules["groups"][0]["rules"]:
        assert rule["alert"] and rule["expr"] and rule["labels"]["severity"] in ("warning", "critical")
        used |= {re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"\btriage_\w+", rule["expr"])}
    assert used and used <= documented, used - documented
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
