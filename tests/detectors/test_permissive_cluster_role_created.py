"""PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated (audit-trail pack)."""

from __future__ import annotations

import json

import pytest

from detectors.extension_cases import cluster_role
from detectors.scanning import scan, types, with_pack

FINDING = "PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated"


@pytest.mark.parametrize(("rules", "grant"), [
    ([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], "wildcard"),
    ([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}],
     "escalate"),
    ([{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}], "impersonate"),
    ([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}], "pods/exec"),
    ([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}], "write"),
])
def test_permissive_roles_are_recorded_with_the_pack(rules, grant):
    [finding] = scan([cluster_role(rules)], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert grant in finding["service"]["action"]["kubernetesApiCallAction"]["parameters"].split(", ")
    assert finding["service"]["action"]["kubernetesRoleDetails"]["name"] == "ops-role"
    assert json.loads(finding["service"]["additionalInfo"]["value"])["detectionPack"] == "audit-trail"


def test_off_by_default():
    assert types([cluster_role([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])]) == set()


def test_read_only_role_and_system_aggregation_are_not_recorded():
    assert with_pack([cluster_role([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])]) == set()
    aggregator = {"username": "system:serviceaccount:kube-system:clusterrole-aggregation-controller"}
    assert with_pack([cluster_role([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
                                   user=aggregator)]) == set()


@pytest.mark.parametrize("fixture", ["create_cluster_role_wildcard_resources.json",
                                     "create_cluster_role_wildcard_verbs.json",
                                     "create_cluster_role_write_privileges.json",
                                     "create_cluster_role_pod_exec.json"])
def test_falco_fixtures(falco_dir, fixture):
    assert with_pack([json.loads((falco_dir / fixture).read_text())]) == {FINDING}
