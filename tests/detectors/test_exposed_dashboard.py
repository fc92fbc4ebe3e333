"""Policy:Kubernetes/ExposedDashboard and KubeflowDashboardExposed: a dashboard on a public load balancer."""

from __future__ import annotations

import json

import pytest

from kubeguard.detectors.signatures.exposed_dashboard import ExposedDashboard
from kubeguard.detectors.signatures.trackers import KubeflowTracker

DASHBOARD = "Policy:Kubernetes/ExposedDashboard"
KUBEFLOW = "Policy:Kubernetes/KubeflowDashboardExposed"


def _patch_to_load_balancer(namespace="kubernetes-dashboard", name="kubernetes-dashboard", *, annotations=None,
                            source_ranges=None, labels=None, service_type="LoadBalancer"):
    """``kubectl patch svc NAME -n NS -p '{"spec":{"type":"LoadBalancer"}}'`` as a 1.3x API server logs it."""
    spec = {"type": service_type, "selector": {"k8s-app": "kubernetes-dashboard"},
            "ports": [{"port": 443, "targetPort": 8443}]}
    if source_ranges is not None:
        spec["loadBalancerSourceRanges"] = source_ranges
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": f"patch-{namespace}-{name}-{service_type}-{annotations}-{source_ranges}",
        "stage": "ResponseComplete", "verb": "patch",
        "requestURI": f"/api/v1/namespaces/{namespace}/services/{name}?fieldManager=kubectl-patch",
        "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["192.0.2.10"], "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
        "objectRef": {"resource": "services", "namespace": namespace, "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": {"spec": {"type": service_type}},
        "responseObject": {"kind": "Service", "apiVersion": "v1", "metadata": {
            "name": name, "namespace": namespace, "labels": labels or {"k8s-app": name},
            "annotations": annotations or {}}, "spec": spec},
        "stageTimestamp": "2024-05-14T09:31:07.412345Z",
    }


def test_guardduty_tester_patching_kubernetes_dashboard_to_load_balancer(run):
    [finding] = run([ExposedDashboard()], [_patch_to_load_balancer()])
    assert finding["type"] == DASHBOARD
    assert finding["severity"] == 5.0
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "kubernetes-admin"
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert (call["namespace"], call["resourceName"], call["verb"]) == ("kubernetes-dashboard",
                                                                      "kubernetes-dashboard", "patch")
    assert json.loads(call["parameters"]) == {"spec": {"type": "LoadBalancer"}}
    assert call["remoteIpDetails"] == {"ipAddressV4": "192.0.2.10"}


@pytest.mark.parametrize(
    "annotations",
    [{"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
     {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
     {"networking.gke.io/load-balancer-type": "Internal"},
     {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}],
)
def test_internal_load_balancer_is_not_exposed(run, annotations):
    assert run([ExposedDashboard()], [_patch_to_load_balancer(annotations=annotations)]) == []


def test_load_balancer_open_only_to_private_ranges_is_not_exposed(run):
    private = _patch_to_load_balancer(source_ranges=["10.0.0.0/8", "192.168.0.0/16"])
    public = _patch_to_load_balancer(source_ranges=["10.0.0.0/8", "0.0.0.0/0"])
    assert run([ExposedDashboard()], [private]) == []
    assert [f["type"] for f in run([ExposedDashboard()], [public])] == [DASHBOARD]


def test_dashboard_renamed_but_labelled_and_exposed_by_node_port(run):
    record = _patch_to_load_balancer(namespace="ops", name="k8s-ui", service_type="NodePort",
                                     labels={"app.kubernetes.io/name": "kubernetes-dashboard"})
    [finding] = run([ExposedDashboard()], [record])
    assert finding["type"] == DASHBOARD
    assert json.loads(finding["service"]["action"]["kubernetesApiCallAction"]["parameters"]) == {
        "spec": {"type": "NodePort"}
    }


def test_cluster_ip_dashboard_is_not_exposed(run):
    assert run([ExposedDashboard()], [_patch_to_load_balancer(service_type="ClusterIP")]) == []


def test_ordinary_node_port_service_is_not_a_dashboard(falco_dir, run):
    record = json.loads((falco_dir / "create_nginx_service_nodeport.json").read_text())
    assert run([ExposedDashboard()], [record]) == []


def test_denied_patch_raises_nothing(run):
    record = _patch_to_load_balancer()
    record["responseStatus"] = {"code": 403}
    record["responseObject"] = {"kind": "Status", "status": "Failure", "code": 403}
    assert run([ExposedDashboard()], [record]) == []


def test_kubeflow_central_dashboard_on_load_balancer(run):
    [finding] = run([ExposedDashboard()], [_patch_to_load_balancer("kubeflow", "centraldashboard",
                                                                    labels={"app": "centraldashboard"})])
    assert finding["type"] == KUBEFLOW
    assert finding["service"]["action"]["kubernetesApiCallAction"]["namespace"] == "kubeflow"


def test_istio_ingress_gateway_counts_only_where_kubeflow_runs(run):
    gateway = _patch_to_load_balancer("istio-system", "istio-ingressgateway", labels={"app": "istio-ingressgateway"})
    assert run([KubeflowTracker(), ExposedDashboard()], [gateway]) == []
    kubeflow_namespace = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "ns-kubeflow", "stage": "ResponseComplete",
        "verb": "create", "requestURI": "/api/v1/namespaces", "user": {"username": "kubernetes-admin"},
        "objectRef": {"resource": "namespaces", "name": "kubeflow", "apiVersion": "v1"},
        "responseStatus": {"code": 201},
    }
    [finding] = run([KubeflowTracker(), ExposedDashboard()], [kubeflow_namespace, gateway])
    assert finding["type"] == KUBEFLOW
