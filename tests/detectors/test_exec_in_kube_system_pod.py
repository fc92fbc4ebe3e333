"""Execution:Kubernetes/ExecInKubeSystemPod: a command run through the exec API in a kube-system pod."""

from __future__ import annotations

import json

from kubeguard.detectors.signatures.exec_in_kube_system_pod import ExecInKubeSystemPod

FINDING = "Execution:Kubernetes/ExecInKubeSystemPod"
POD = "coredns-7c65d6cfc9-x2v9q"


def _exec_records(lab_records, pod):
    return [
        r for r in lab_records
        if r.get("objectRef", {}).get("subresource") == "exec" and r["objectRef"]["name"] == pod
    ]


def _established(records):
    """The lab's execs as a cluster with a kubelet logs them: the stream upgraded (101)."""
    for record in records:
        record["responseStatus"] = {"metadata": {}, "code": 101}
    return records


def test_lab_exec_answered_400_ran_nothing_and_raises_nothing(lab_records, run):
    records = _exec_records(lab_records, POD)
    assert {r["responseStatus"]["code"] for r in records} == {400}  # the pod has no node
    assert run([ExecInKubeSystemPod()], records) == []


def test_admin_exec_cat_resolv_conf_in_coredns_pod(lab_records, run):
    records = _established(_exec_records(lab_records, POD))
    # kubectl tried the websocket (get) and then the SPDY (create) exec; each is logged at two stages.
    assert sorted((r["verb"], r["stage"]) for r in records) == [
        ("create", "ResponseComplete"), ("create", "ResponseStarted"),
        ("get", "ResponseComplete"), ("get", "ResponseStarted"),
    ]
    [finding] = run([ExecInKubeSystemPod()], records)
    assert finding["type"] == FINDING
    assert finding["severity"] == 5.0
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "kubernetes-admin"
    assert "kubernetesWorkloadDetails" not in finding["resource"]["kubernetesDetails"]
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert call["namespace"] == "kube-system"
    assert call["resourceName"] == POD
    assert call["subresource"] == "exec"
    assert call["parameters"] == "cat /etc/resolv.conf"
    assert call["remoteIpDetails"] == {"ipAddressV4": "127.0.0.1"}
    # Two exec calls (two auditIDs), each seen at two stages, are two occurrences of one finding.
    assert finding["service"]["count"] == 2


def test_exec_into_dev_pod_is_not_this_finding(lab_records, run):
    records = _established(_exec_records(lab_records, "priv-debug"))
    assert records
    assert run([ExecInKubeSystemPod()], records) == []


def test_forbidden_exec_in_kube_system_raises_nothing(lab_records, run):
    record = [r for r in _exec_records(lab_records, POD) if r["stage"] == "ResponseComplete"][0]
    record["responseStatus"] = {"code": 403, "reason": "Forbidden", "status": "Failure"}
    record["annotations"] = {"authorization.k8s.io/decision": "forbid"}
    assert run([ExecInKubeSystemPod()], [record]) == []


def test_falco_exec_fixture_moved_to_kube_system_with_101_upgrade(falco_dir, run):
    record = json.loads((falco_dir / "exec_pod.json").read_text())
    assert run([ExecInKubeSystemPod()], [record]) == []  # default namespace
    record["objectRef"]["namespace"] = "kube-system"
    record["requestURI"] = record["requestURI"].replace("/namespaces/default/", "/namespaces/kube-system/")
    [finding] = run([ExecInKubeSystemPod()], [record])
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert call["statusCode"] == 101
    assert call["parameters"] == "bash"
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "minikube-user"


def test_attach_to_kube_system_pod_counts_like_exec(falco_dir, run):
    record = json.loads((falco_dir / "attach_pod.json").read_text())
    record["objectRef"]["namespace"] = "kube-system"
    [finding] = run([ExecInKubeSystemPod()], [record])
    assert finding["service"]["action"]["kubernetesApiCallAction"]["subresource"] == "attach"
    assert "parameters" not in finding["service"]["action"]["kubernetesApiCallAction"]
