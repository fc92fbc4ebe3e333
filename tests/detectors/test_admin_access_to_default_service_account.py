"""Policy:Kubernetes/AdminAccessToDefaultServiceAccount: admin rights for a namespace's default account."""

from __future__ import annotations

from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.signatures.admin_access_to_default_service_account import (
    AdminAccessToDefaultServiceAccount,
)
from kubeguard.detectors.signatures.trackers import WildcardRoleTracker

FINDING = "Policy:Kubernetes/AdminAccessToDefaultServiceAccount"


def test_admin_role_bound_to_dev_default_service_account(lab_record, run):
    [finding] = run([AdminAccessToDefaultServiceAccount()], [lab_record("create", "rolebindings",
                                                                         "default-sa-admin")])
    assert finding["type"] == FINDING
    assert finding["severity"] == 8.0
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "kubernetes-admin"
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"] == {
        "kind": "RoleBinding", "name": "default-sa-admin", "uid": "0c4a05dd-9138-4e32-a2ef-3c99e2d99cbd",
        "roleRefName": "admin", "roleRefKind": "ClusterRole",
    }
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert (call["namespace"], call["resource"], call["resourceName"]) == ("dev", "rolebindings",
                                                                         "default-sa-admin")
    assert call["remoteIpDetails"] == {"ipAddressV4": "127.0.0.1"}


def test_edit_role_for_alice_is_not_admin(lab_record, run):
    assert run([AdminAccessToDefaultServiceAccount()], [lab_record("create", "rolebindings", "alice-edit")]) == []


def test_view_role_for_default_service_account_is_not_admin(lab_record, run):
    record = lab_record("create", "rolebindings", "default-sa-admin")
    record["responseObject"]["roleRef"]["name"] = "view"
    assert run([AdminAccessToDefaultServiceAccount()], [record]) == []


def test_cluster_admin_for_a_named_service_account_is_not_the_default_one(lab_record, run):
    record = lab_record("create", "rolebindings", "default-sa-admin")
    record["responseObject"]["subjects"][0]["name"] = "builder"
    assert run([AdminAccessToDefaultServiceAccount()], [record]) == []


def test_guardduty_tester_patch_of_cluster_admin_binding_adding_default_default(lab_record, run):
    record = lab_record("create", "clusterrolebindings", "anonymous-cluster-admin")
    record.update(verb="patch", responseStatus={"code": 200},
                  requestObject={"subjects": [{"kind": "ServiceAccount", "name": "default",
                                               "namespace": "default"}]})
    record["objectRef"]["name"] = "cluster-admin"
    record["responseObject"]["metadata"]["name"] = "cluster-admin"
    record["responseObject"]["subjects"] = [
        {"kind": "Group", "name": "system:masters"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
    ]
    [finding] = run([AdminAccessToDefaultServiceAccount()], [record])
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"]["kind"] == "ClusterRoleBinding"
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"]["name"] == "cluster-admin"


def test_all_service_accounts_group_counts(lab_record, run):
    record = lab_record("create", "rolebindings", "default-sa-admin")
    record["responseObject"]["subjects"] = [{"kind": "Group", "name": "system:serviceaccounts:dev"}]
    assert len(run([AdminAccessToDefaultServiceAccount()], [record])) == 1


def _wildcard_role(verb="create", rules=None):
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"role-{verb}-{bool(rules)}",
        "stage": "ResponseComplete", "verb": verb,
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/roles",
        "user": {"username": "kubernetes-admin"}, "sourceIPs": ["127.0.0.1"],
        "objectRef": {"resource": "roles", "namespace": "dev", "name": "god",
                      "apiGroup": "rbac.authorization.k8s.io"},
        "responseStatus": {"code": 201 if verb == "create" else 200},
        "responseObject": {"kind": "Role", "metadata": {"name": "god", "namespace": "dev"},
                           "rules": rules or [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    }


def test_role_with_wildcard_verbs_on_wildcard_resources_is_admin(lab_record, run):
    binding = lab_record("create", "rolebindings", "default-sa-admin")
    binding["responseObject"]["roleRef"] = {"kind": "Role", "name": "god"}
    assert run([AdminAccessToDefaultServiceAccount()], [binding]) == []  # role never seen
    [finding] = run(default_detectors(), [_wildcard_role(), binding])
    assert finding["type"] == FINDING
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"]["roleRefKind"] == "Role"
    # Once the role lost its wildcard rule, binding it is no longer admin.
    narrowed = _wildcard_role("update", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    assert run([WildcardRoleTracker(), AdminAccessToDefaultServiceAccount()],
               [_wildcard_role(), narrowed, binding]) == []
