"""Each of the eight AnomalousBehavior types: raised on an unusual action after a history of ordinary
use, and not raised when the same action is the principal's habit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from kubeguard.audit.event import AuditEvent

from .traffic import (
    ATTACK_AGENT,
    START,
    VPS_IP,
    access_review,
    anomalies,
    cluster_role,
    cluster_role_binding,
    deployment,
    event,
    habits,
    pipeline,
)

Action = Callable[..., AuditEvent]
WHEN = START + timedelta(days=8, hours=3)


def read_secret(at: datetime, **caller: str) -> AuditEvent:
    return event("get", "secrets", "shop", "db-credentials", at=at, **caller)


def bind_cluster_admin(at: datetime, **caller: str) -> AuditEvent:
    body = cluster_role_binding("ops-admin", "cluster-admin", "mallory")
    return event("create", "clusterrolebindings", name="ops-admin", at=at, request=body, response=body,
                 code=201, **caller)


def exec_into_pod(at: datetime, **caller: str) -> AuditEvent:
    return event("create", "pods", "shop", "web-5d9c7", sub="exec", at=at, code=101, **caller)


def deploy(body: dict) -> Action:
    def action(at: datetime, **caller: str) -> AuditEvent:
        return event("create", "deployments", "shop", body["metadata"]["name"], at=at, request=body,
                     response=body, code=201, **caller)
    return action


def create_wildcard_role(at: datetime, **caller: str) -> AuditEvent:
    body = cluster_role("everything", ["*"], ["*"])
    return event("create", "clusterroles", name="everything", at=at, request=body, response=body, code=201,
                 **caller)


def check_exec_permission(at: datetime, **caller: str) -> AuditEvent:
    body = access_review("create", "pods", "kube-system", "exec")
    return event("create", "selfsubjectaccessreviews", at=at, request=body, response=body, code=201, **caller)


CASES = [
    ("CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed", 5.0, read_secret),
    ("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated", 8.0, bind_cluster_admin),
    ("Execution:Kubernetes/AnomalousBehavior.ExecInPod", 5.0, exec_into_pod),
    ("PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer", 8.0,
     deploy(deployment("debugger", "docker.io/library/alpine:3.19", privileged=True))),
    ("Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount", 8.0,
     deploy(deployment("log-shipper", "docker.io/library/busybox:1.36", host_path="/etc"))),
    ("Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed", 2.0,
     deploy(deployment("web", "ghcr.io/example/web:1.4.2"))),
    ("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated", 2.0, create_wildcard_role),
    ("Discovery:Kubernetes/AnomalousBehavior.PermissionChecked", 2.0, check_exec_permission),
]


@pytest.mark.parametrize(("finding_type", "severity", "action"), CASES, ids=[c[0].rsplit(".", 1)[-1] for c in CASES])
def test_raised_when_unusual_for_the_principal(finding_type: str, severity: float, action: Action) -> None:
    pipe = pipeline()
    assert anomalies(pipe, habits()) == []
    found = anomalies(pipe, [action(WHEN, ip=VPS_IP, agent=ATTACK_AGENT)])
    assert [f["type"] for f in found] == [finding_type]
    assert found[0]["severity"] == severity
    unusual = found[0]["service"]["detection"]["anomaly"]["unusual"]["behavior"]["USER"]
    assert unusual["network"]["observations"]["text"] == ["167.99.92.0/24"]
    assert unusual["userAgent"]["observations"]["text"] == ["python-requests/v2.31"]
    assert unusual["network"]["profileSubtype"] == "UNSEEN"


@pytest.mark.parametrize(("finding_type", "severity", "action"), CASES, ids=[c[0].rsplit(".", 1)[-1] for c in CASES])
def test_not_raised_when_habitual(finding_type: str, severity: float, action: Action) -> None:
    pipe = pipeline()
    assert anomalies(pipe, habits(also=lambda at: [action(at)])) == []
    assert anomalies(pipe, [action(WHEN)]) == []


def test_workload_with_a_miner_image_is_medium() -> None:
    pipe = pipeline()
    anomalies(pipe, habits())
    miner = deploy(deployment("cache-optimizer", "docker.io/metal3d/xmrig:latest", command=["xmrig"]))
    found = anomalies(pipe, [miner(WHEN, ip=VPS_IP, agent=ATTACK_AGENT)])
    assert [(f["type"], f["severity"]) for f in found] == [("Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",
                                                            5.0)]


def test_one_unusual_attribute_of_an_ordinary_action_is_ordinary_life() -> None:
    """alice, who reads shop's secrets, reads one in a namespace she never worked in, from her desk with her
    kubectl: one new thing, no finding."""
    pipe = pipeline()
    anomalies(pipe, habits(also=lambda at: [read_secret(at)]))
    assert anomalies(pipe, [event("get", "secrets", "payments", "stripe-key", at=WHEN)]) == []


def test_insider_from_the_usual_desk_is_caught_by_a_risky_first() -> None:
    """A wildcard ClusterRole, never written before by this principal, is enough on its own."""
    pipe = pipeline()
    anomalies(pipe, habits())
    found = anomalies(pipe, [create_wildcard_role(WHEN)])
    assert [f["type"] for f in found] == ["PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated"]
    behavior = found[0]["service"]["detection"]["anomaly"]["unusual"]["behavior"]["USER"]
    assert behavior["kubernetesApi"]["observations"]["text"] == ["create clusterroles"]
    assert found[0]["service"]["action"]["kubernetesRoleDetails"] == {"kind": "ClusterRole", "name": "everything",
                                                                      "uid": "uid-everything"}


def test_binding_and_permission_details_are_filled() -> None:
    pipe = pipeline()
    anomalies(pipe, habits())
    binding, = anomalies(pipe, [bind_cluster_admin(WHEN, ip=VPS_IP, agent=ATTACK_AGENT)])
    assert binding["service"]["action"]["kubernetesRoleBindingDetails"] == {
        "kind": "ClusterRoleBinding", "name": "ops-admin", "uid": "uid-ops-admin", "roleRefName": "cluster-admin",
        "roleRefKind": "ClusterRole"}
    check, = anomalies(pipe, [check_exec_permission(WHEN + timedelta(minutes=1), ip=VPS_IP, agent=ATTACK_AGENT)])
    assert check["service"]["action"]["kubernetesPermissionCheckedDetails"] == {
        "verb": "create", "resource": "pods/exec", "namespace": "kube-system", "allowed": True}
