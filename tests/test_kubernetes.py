"""deploy/kubernetes/: validated against the Kubernetes API schemas of one named version, never run here (no
cluster can be had on this machine). The validator is kubernetes-validate (the API's own OpenAPI schemas,
strict: an unknown field fails), and a manifest broken on purpose shows it catches what it must.
"""
import copy
import ipaddress

import pytest
import yaml
from kubernetes_validate import ValidationError, validate
from kubernetes_validate.utils import SchemaNotFoundError

from proxy.config import Config as ProxyConfig
from tests.procs import ROOT
from web import create_app
from web.config import Config as WebConfig

pytestmark = pytest.mark.fast

KUBERNETES_VERSION = "1.33.0"  # the API the manifests are written for
FOLDER = ROOT / "deploy/kubernetes"
KUSTOMIZATION = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
MANIFESTS = sorted(KUSTOMIZATION["resources"])
DOCUMENTS = [doc for name in MANIFESTS for doc in yaml.safe_load_all((FOLDER / name).read_text()) if doc]
KINDS = {(doc["kind"], doc["metadata"]["name"]): doc for doc in DOCUMENTS}


def container(kind, name):
    [one] = KINDS[(kind, name)]["spec"]["template"]["spec"]["containers"]
    return one


def env(kind, name):
    return {item["name"]: item.get("value") for item in container(kind, name)["env"]}


def test_kustomization_lists_every_manifest():
    assert MANIFESTS == sorted(p.name for p in FOLDER.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("key", sorted(KINDS), ids=lambda key: f"{key[0]}/{key[1]}")
def test_each_object_validates_against_the_named_kubernetes_api(key):
    validate(KINDS[key], KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_fails_validation():
    """The negative control: the validator rejects an unknown field and a wrong type."""
    broken = copy.deepcopy(KINDS[("Deployment", "web")])
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(ValidationError):
        validate(broken, KUBERNETES_VERSION, strict=True)
    wrong_type = copy.deepcopy(KINDS[("Deployment", "web")])
    wrong_type["spec"]["replicas"] = "four"
    with pytest.raises(ValidationError):
        validate(wrong_type, KUBERNETES_VERSION, strict=True)
    with pytest.raises(SchemaNotFoundError):
        validate({**KINDS[("Deployment", "web")], "apiVersion": "apps/v0"}, KUBERNETES_VERSION, strict=True)


def test_the_expected_objects_are_there():
    assert {("StatefulSet", "valkey"), ("Service", "valkey"), ("Deployment", "web"),
            ("HorizontalPodAutoscaler", "web"), ("PodDisruptionBudget", "web"), ("Deployment", "proxy"),
            ("Service", "proxy")} <= set(KINDS)


def test_valkey_keeps_its_append_only_file_on_a_claim():
    valkey = KINDS[("StatefulSet", "valkey")]
    [claim] = valkey["spec"]["volumeClaimTemplates"]
    [mount] = container("StatefulSet", "valkey")["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"] and mount["mountPath"] == env("StatefulSet", "valkey")["REDIS_DATA"]
    assert container("StatefulSet", "valkey")["command"] == ["python", "-m", "backing"]


def test_web_is_ready_on_readyz_and_finds_valkey():
    web = container("Deployment", "web")
    routes = {r.rule for r in create_app(WebConfig(redis_url="redis://127.0.0.1:1/0", instance="t")).url_map.iter_rules()}
    probe = web["readinessProbe"]["httpGet"]
    assert probe["path"] == "/readyz" and probe["path"] in routes and web["livenessProbe"]["httpGet"]["path"] in routes
    [port] = web["ports"]
    assert probe["port"] == port["name"] and port["containerPort"] == int(env("Deployment", "web")["PORT"])
    assert env("Deployment", "web")["HOST_REDIS"] == "valkey" and ("Service", "valkey") in KINDS


def test_autoscaler_and_disruption_budget_hold_the_web_pods():
    hpa, pdb = KINDS[("HorizontalPodAutoscaler", "web")], KINDS[("PodDisruptionBudget", "web")]
    web = KINDS[("Deployment", "web")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert hpa["spec"]["minReplicas"] == web["spec"]["replicas"] < hpa["spec"]["maxReplicas"]
    assert container("Deployment", "web")["resources"]["requests"]["cpu"], "CPU utilisation needs a request"
    assert pdb["spec"]["selector"]["matchLabels"] == web["spec"]["template"]["metadata"]["labels"]
    assert 0 < pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "a drain can still make progress"


def test_services_select_their_pods_and_the_proxy_routes_only_inside_the_pod_network():
    for name in ("valkey", "proxy"):
        service = KINDS[("Service", name)]
        workload = KINDS.get(("StatefulSet", name)) or KINDS[("Deployment", name)]
        assert service["spec"]["selector"] == workload["spec"]["template"]["metadata"]["labels"]
    config = ProxyConfig.from_env(env("Deployment", "proxy"))
    assert config.allow == (ipaddress.ip_network(env("Deployment", "proxy")["PROXY_ALLOW"]),)
    assert not config.allows("127.0.0.1:8000")
