"""PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces (audit-trail pack)."""

from __future__ import annotations

import json

from detectors.extension_cases import host_network_pod
from detectors.scanning import scan, types, with_pack

FINDING = "PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces"


def test_host_network_and_pid_are_recorded_with_the_pack():
    [finding] = scan([host_network_pod()], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert "network, PID namespaces" in finding["description"]
    workload = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    assert workload["hostNetwork"] is True and workload["hostPID"] is True


def test_silent_by_default():
    assert types([host_network_pod()]) == set()


def test_falco_fixtures(falco_dir):
    assert with_pack([json.loads((falco_dir / "create_nginx_pod_hostnetwork.json").read_text())]) == {FINDING}
    assert with_pack([json.loads((falco_dir / "create_nginx_pod_nohostnetwork.json").read_text())]) == set()


def test_controller_pods_of_a_reported_owner_are_not_reported_again():
    from detectors.real_events import api_event, container, pod_spec, workload

    spec = pod_spec(container("ingress", "ingress-nginx/controller:v1.11"), hostNetwork=True)
    owner = api_event("create", "daemonsets", namespace="ingress", body=workload("daemonsets", "edge", "ingress", spec))
    pod = workload("pods", "edge-x7k2p", "ingress", spec)
    pod["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "edge", "controller": True}]
    replica = api_event("create", "pods", namespace="ingress", body=pod,
                        user={"username": "system:serviceaccount:kube-system:daemon-set-controller"})
    [finding] = scan([owner, replica], packs=["audit-trail"])
    assert finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["type"] == "daemonsets"
    assert scan([replica], packs=["audit-trail"])[0]["type"] == FINDING  # owner not in the log: the pod is
