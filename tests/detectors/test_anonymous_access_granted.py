"""Policy:Kubernetes/AnonymousAccessGranted: a binding that hands permissions to anonymous callers."""

from __future__ import annotations

import json

from kubeguard.detectors.signatures.anonymous_access_granted import AnonymousAccessGranted

FINDING = "Policy:Kubernetes/AnonymousAccessGranted"


def test_admin_binding_cluster_admin_to_system_anonymous(lab_record, run):
    [finding] = run([AnonymousAccessGranted()], [lab_record("create", "clusterrolebindings",
                                                             "anonymous-cluster-admin")])
    assert finding["type"] == FINDING
    assert finding["severity"] == 8.0
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "kubernetes-admin"
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"] == {
        "kind": "ClusterRoleBinding",
        "name": "anonymous-cluster-admin",
        "uid": "4a5eaf39-8080-42f3-9e1e-575fed41dfac",
        "roleRefName": "cluster-admin",
        "roleRefKind": "ClusterRole",
    }
    assert finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"] == {
        "ipAddressV4": "127.0.0.1"
    }


def test_binding_a_role_to_the_unauthenticated_group(lab_record, run):
    record = lab_record("create", "rolebindings", "alice-edit")
    record["responseObject"]["subjects"] = [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:unauthenticated"}
    ]
    [finding] = run([AnonymousAccessGranted()], [record])
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"]["kind"] == "RoleBinding"
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"]["roleRefName"] == "edit"
    assert finding["service"]["action"]["kubernetesApiCallAction"]["namespace"] == "dev"


def test_patch_adding_anonymous_subject_to_existing_binding(lab_record, run):
    record = lab_record("create", "rolebindings", "alice-edit")
    record.update(verb="patch", requestObject={"subjects": [{"kind": "User", "name": "system:anonymous"}]},
                  responseStatus={"code": 200})
    record["responseObject"]["subjects"].append({"kind": "User", "name": "system:anonymous"})
    [finding] = run([AnonymousAccessGranted()], [record])
    assert finding["service"]["action"]["kubernetesApiCallAction"]["verb"] == "patch"


def test_built_in_bootstrap_public_info_binding_is_not_a_finding(lab_records, run):
    bootstrap = [
        r for r in lab_records
        if r["verb"] == "create" and r.get("objectRef", {}).get("resource") == "clusterrolebindings"
        and "system:unauthenticated" in json.dumps(r.get("responseObject"))
    ]
    assert {r["objectRef"]["name"] for r in bootstrap} >= {"system:public-info-viewer"}
    assert run([AnonymousAccessGranted()], bootstrap) == []


def test_denied_binding_by_mallory_raises_nothing(lab_records, run):
    [denied] = [r for r in lab_records if r["user"].get("username") == "mallory"
                and r.get("objectRef", {}).get("resource") == "clusterrolebindings" and r["verb"] == "create"]
    assert denied["responseStatus"]["code"] == 403
    # Even with the grant in the request, a denied write grants nothing.
    denied["requestObject"] = {"kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                               "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                               "subjects": [{"kind": "User", "name": "system:anonymous"}]}
    assert run([AnonymousAccessGranted()], [denied]) == []


def test_binding_cluster_admin_to_a_named_user_is_not_anonymous(falco_dir, run):
    record = json.loads((falco_dir / "attach_cluster_admin_role.json").read_text())
    assert run([AnonymousAccessGranted()], [record]) == []
