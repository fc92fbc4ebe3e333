"""PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated."""

from __future__ import annotations

import pytest

from detectors.extension_cases import impersonating
from detectors.scanning import scan, types

FINDING = "PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated"
MALLORY = {"username": "mallory", "groups": ["system:authenticated"]}


@pytest.mark.parametrize("target", [
    {"username": "anyone", "groups": ["system:masters"]},
    {"username": "system:node:ip-10-0-1-5", "groups": ["system:nodes"]},
    {"username": "system:serviceaccount:kube-system:clusterrole-aggregation-controller"},
    {"username": "system:kube-controller-manager"},
    {"username": "kubernetes-admin"},
])
def test_impersonating_a_privileged_identity_is_found(target):
    [finding] = scan([impersonating(target, user=MALLORY)])
    assert finding["type"] == FINDING
    details = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]
    assert details["username"] == "mallory"
    assert details["impersonatedUser"]["username"] == target["username"]
    assert "hides who acted" in finding["description"]


def test_checking_what_a_colleague_may_do_is_ordinary():
    assert types([impersonating({"username": "alice", "groups": ["dev-team"]})]) == set()


def test_access_proxies_running_as_service_accounts_are_not_reported():
    proxy = {"username": "system:serviceaccount:teleport:teleport-kube-agent", "groups": ["system:serviceaccounts"]}
    assert types([impersonating({"username": "bob", "groups": ["system:masters"]}, user=proxy)]) == set()


def test_a_refused_impersonation_is_not_reported():
    assert types([impersonating({"username": "system:admin", "groups": ["system:masters"]}, user=MALLORY,
                                code=403)]) == set()


def test_kubectl_auth_can_i_as_a_system_account_acts_as_nobody():
    from detectors.real_events import api_event

    review = api_event("create", "selfsubjectaccessreviews", impersonate={
        "username": "system:serviceaccount:kube-system:coredns"}, body={
        "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"resourceAttributes": {"verb": "list", "resource": "secrets"}}})
    assert types([review]) == set()
