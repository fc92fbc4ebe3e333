"""PrivilegeEscalation:Kubernetes/PrivilegedContainer: the first privileged launch of an image in a cluster."""

from __future__ import annotations

import copy

from kubeguard.detectors.signatures.privileged_container import PrivilegedContainer
from kubeguard.detectors.state import MemoryState

FINDING = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"


def _renamed(record, name):
    record = copy.deepcopy(record)
    record["auditID"] += "-" + name
    record["objectRef"]["name"] = name
    for body in ("requestObject", "responseObject"):
        if record.get(body):
            record[body]["metadata"]["name"] = name
    return record


def test_admin_creating_privileged_busybox_pod_with_host_pid_and_network_raises_privileged_container(
    lab_record, run
):
    record = lab_record("create", "pods", "priv-debug")
    [finding] = run([PrivilegedContainer()], [record])

    assert finding["type"] == FINDING
    assert finding["severity"] == 5.0
    kubernetes = finding["resource"]["kubernetesDetails"]
    assert kubernetes["kubernetesUserDetails"]["username"] == "kubernetes-admin"
    assert kubernetes["kubernetesUserDetails"]["groups"] == ["system:masters", "system:authenticated"]
    workload = kubernetes["kubernetesWorkloadDetails"]
    assert workload["name"] == "priv-debug"
    assert workload["namespace"] == "dev"
    assert workload["type"] == "pods"
    assert workload["uid"] == "d350714b-6e59-45b1-bb3b-2209a34777bf"
    assert workload["hostPID"] is True and workload["hostNetwork"] is True and workload["hostIPC"] is False
    assert workload["containers"] == [
        {"name": "shell", "image": "busybox:1.36", "imagePrefix": "", "securityContext": {"privileged": True},
         "volumeMounts": [{"name": "kube-api-access-s7bsx",
                           "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
    ]
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert call["verb"] == "create" and call["resource"] == "pods" and call["namespace"] == "dev"
    assert call["statusCode"] == 201
    assert call["remoteIpDetails"] == {"ipAddressV4": "127.0.0.1"}
    assert finding["service"]["count"] == 1


def test_second_privileged_launch_of_the_same_image_is_not_new(lab_record, run):
    first = lab_record("create", "pods", "priv-debug")
    findings = run([PrivilegedContainer()], [first, _renamed(first, "priv-debug-2")])
    assert [f["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["name"] for f in findings] == [
        "priv-debug"
    ]


def test_first_seen_is_per_cluster_and_survives_in_state(lab_record, run):
    record = lab_record("create", "pods", "priv-debug")
    state = MemoryState()
    assert len(run([PrivilegedContainer()], [record], state=state, cluster="a")) == 1
    assert run([PrivilegedContainer()], [_renamed(record, "again")], state=state, cluster="a") == []
    assert len(run([PrivilegedContainer()], [record], state=state, cluster="b")) == 1


def test_unprivileged_pod_raises_nothing(lab_record, run):
    record = lab_record("create", "pods", "etc-reader")
    assert run([PrivilegedContainer()], [record]) == []


def test_denied_privileged_pod_raises_nothing(lab_record, run):
    record = lab_record("create", "pods", "priv-debug")
    record["responseStatus"] = {"code": 403, "status": "Failure", "reason": "Forbidden"}
    record["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403}
    record["annotations"] = {"authorization.k8s.io/decision": "forbid"}
    assert run([PrivilegedContainer()], [record]) == []


def test_privileged_init_container_in_deployment_template_names_the_deployment(lab_record, run):
    record = lab_record("create", "deployments", "web")
    pod_spec = record["responseObject"]["spec"]["template"]["spec"]
    pod_spec["initContainers"] = [
        {"name": "setup", "image": "docker.io/library/alpine:3.20", "securityContext": {"privileged": True}}
    ]
    record["requestObject"] = None
    [finding] = run([PrivilegedContainer()], [record])
    workload = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    assert (workload["type"], workload["namespace"], workload["name"]) == ("deployments", "dev", "web")
    assert workload["containers"][0] == {
        "name": "setup", "image": "docker.io/library/alpine:3.20", "imagePrefix": "docker.io/library",
        "securityContext": {"privileged": True},
    }


def test_privileged_container_in_cronjob_job_template(make_event, run):
    cronjob = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "cj-1", "stage": "ResponseComplete",
        "verb": "create", "requestURI": "/apis/batch/v1/namespaces/ops/cronjobs",
        "user": {"username": "ci-deployer"}, "sourceIPs": ["203.0.113.9"],
        "objectRef": {"resource": "cronjobs", "namespace": "ops", "name": "miner", "apiGroup": "batch"},
        "responseStatus": {"code": 201},
        "requestObject": {"kind": "CronJob", "metadata": {"name": "miner", "namespace": "ops"}, "spec": {
            "schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "x", "image": "xmrig/xmrig:6", "securityContext": {"privileged": True}}]}}}}}},
        "stageTimestamp": "2024-05-14T09:31:07.412345Z",
    }
    [finding] = run([PrivilegedContainer()], [cronjob])
    workload = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    assert (workload["type"], workload["name"]) == ("cronjobs", "miner")
    assert workload["containers"][0]["image"] == "xmrig/xmrig:6"
    assert finding["service"]["eventFirstSeen"] == "2024-05-14T09:31:07.412Z"
    assert finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"] == {
        "ipAddressV4": "203.0.113.9"
    }


def test_kubectl_debug_privileged_ephemeral_container(make_event, run):
    record = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "eph-1", "stage": "ResponseComplete",
        "verb": "patch", "requestURI": "/api/v1/namespaces/dev/pods/web-1/ephemeralcontainers",
        "user": {"username": "alice"}, "sourceIPs": ["10.0.0.7"],
        "objectRef": {"resource": "pods", "subresource": "ephemeralcontainers", "namespace": "dev",
                      "name": "web-1"},
        "responseStatus": {"code": 200},
        "responseObject": {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "dev"}, "spec": {
            "containers": [{"name": "web", "image": "nginx:1.27"}],
            "ephemeralContainers": [{"name": "debugger", "image": "nicolaka/netshoot",
                                     "securityContext": {"privileged": True}}]}},
    }
    [finding] = run([PrivilegedContainer()], [record])
    names = [c["name"] for c in finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["containers"]]
    assert names == ["web", "debugger"]
