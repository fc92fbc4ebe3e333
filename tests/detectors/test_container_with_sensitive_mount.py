"""Persistence:Kubernetes/ContainerWithSensitiveMount: a writable mount of a sensitive host path."""

from __future__ import annotations

import copy
import json

import pytest

from kubeguard.detectors.signatures.container_with_sensitive_mount import ContainerWithSensitiveMount

FINDING = "Persistence:Kubernetes/ContainerWithSensitiveMount"


def _with_host_path(record, path, *, read_only=False):
    spec = record["responseObject"]["spec"]
    spec["volumes"][0]["hostPath"]["path"] = path
    mount = spec["containers"][0]["volumeMounts"][0]
    assert mount["name"] == "host-etc"
    if read_only:
        mount["readOnly"] = True
    record["requestObject"] = None
    return record


def test_admin_creating_pod_that_mounts_host_etc_writable(lab_record, run):
    [finding] = run([ContainerWithSensitiveMount()], [lab_record("create", "pods", "etc-reader")])
    assert finding["type"] == FINDING
    assert finding["severity"] == 5.0
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "kubernetes-admin"
    workload = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    assert (workload["namespace"], workload["name"], workload["type"]) == ("dev", "etc-reader", "pods")
    assert workload["volumes"] == [{"name": "host-etc", "hostPath": {"path": "/etc"}}]
    [container] = workload["containers"]
    assert container["name"] == "reader" and container["image"] == "busybox:1.36"
    assert {"name": "host-etc", "mountPath": "/host/etc"} in container["volumeMounts"]
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert call["parameters"] == "/etc"
    assert call["remoteIpDetails"] == {"ipAddressV4": "127.0.0.1"}


def test_read_only_mount_of_host_etc_raises_nothing(lab_record, run):
    record = _with_host_path(lab_record("create", "pods", "etc-reader"), "/etc", read_only=True)
    assert run([ContainerWithSensitiveMount()], [record]) == []


@pytest.mark.parametrize("path", ["/tmp/cache", "/data", "/var/lib/docker-data", "/opt"])
def test_mount_of_ordinary_host_path_raises_nothing(lab_record, run, path):
    record = _with_host_path(lab_record("create", "pods", "etc-reader"), path)
    assert run([ContainerWithSensitiveMount()], [record]) == []


@pytest.mark.parametrize(
    "path", ["/", "/var/run/docker.sock", "/run/containerd/containerd.sock", "/var/lib/kubelet/pods",
             "/etc/kubernetes/pki", "/root/.ssh", "/proc", "/etc/", "//etc", "/tmp/../etc"],
)
def test_writable_mount_of_node_controlling_path(lab_record, run, path):
    record = _with_host_path(lab_record("create", "pods", "etc-reader"), path)
    [finding] = run([ContainerWithSensitiveMount()], [record])
    assert finding["service"]["action"]["kubernetesApiCallAction"]["parameters"] == path


def test_controller_pod_whose_owner_was_not_seen_is_reported(falco_dir, run):
    # The log starts after the Deployment was created: the first pod is the only sign of the mount.
    record = json.loads((falco_dir / "create_nginx_pod_sensitive_mount.json").read_text())
    assert record["user"]["username"] == "system:serviceaccount:kube-system:replicaset-controller"
    [finding] = run([ContainerWithSensitiveMount()], [record])
    assert finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["name"] == (
        "nginx-deployment-7d5b5dd9cf-t8ngb"
    )


def test_controller_pods_of_a_reported_owner_are_not_reported_again(falco_dir, run):
    pod = json.loads((falco_dir / "create_nginx_pod_sensitive_mount.json").read_text())
    owner = copy.deepcopy(pod)
    owner["auditID"] = "owner-deployment"
    owner["user"] = {"username": "minikube-user", "groups": ["system:masters"]}
    owner["objectRef"] = {**owner["objectRef"], "resource": "deployments", "name": "nginx-deployment"}
    for body in ("requestObject", "responseObject"):
        spec = owner[body]["spec"]
        owner[body] = {"kind": "Deployment", "metadata": {"name": "nginx-deployment", "namespace": "default"},
                       "spec": {"template": {"metadata": {}, "spec": spec}}}
    findings = run([ContainerWithSensitiveMount()], [owner, pod])
    assert [f["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["name"] for f in findings] == [
        "nginx-deployment"
    ]
    assert findings[0]["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "minikube-user"


def test_guardduty_tester_deployment_mounting_etc_at_test_pd(lab_record, run):
    record = lab_record("create", "deployments", "web")
    pod_spec = record["responseObject"]["spec"]["template"]["spec"]
    pod_spec["volumes"] = [{"name": "test-volume", "hostPath": {"path": "/etc"}}]
    pod_spec["containers"][0]["volumeMounts"] = [{"name": "test-volume", "mountPath": "/test-pd"}]
    record["requestObject"] = None
    [finding] = run([ContainerWithSensitiveMount()], [record])
    workload = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    assert (workload["type"], workload["name"]) == ("deployments", "web")
    assert workload["containers"][0]["volumeMounts"] == [{"name": "test-volume", "mountPath": "/test-pd"}]


def test_denied_pod_with_sensitive_mount_raises_nothing(lab_record, run):
    record = lab_record("create", "pods", "etc-reader")
    record["responseStatus"] = {"code": 403, "reason": "Forbidden"}
    assert run([ContainerWithSensitiveMount()], [record]) == []
