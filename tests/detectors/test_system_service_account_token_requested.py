"""CredentialAccess:Kubernetes/SystemServiceAccountTokenRequested."""

from __future__ import annotations

from detectors.extension_cases import token_request
from detectors.real_events import api_event
from detectors.scanning import scan, types

FINDING = "CredentialAccess:Kubernetes/SystemServiceAccountTokenRequested"


def test_kubectl_create_token_for_a_kube_system_account():
    [finding] = scan([token_request("kube-system", "clusterrole-aggregation-controller")])
    assert finding["type"] == FINDING and finding["severity"] == 8.0
    assert finding["service"]["action"]["kubernetesApiCallAction"]["subresource"] == "token"
    assert "kube-system/clusterrole-aggregation-controller" in finding["description"]


def test_long_lived_token_secret_for_a_kube_system_account():
    secret = {"kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "kp-token", "namespace": "kube-system",
                           "annotations": {"kubernetes.io/service-account.name": "kube-proxy"}}}
    [finding] = scan([api_event("create", "secrets", namespace="kube-system", body=secret)])
    assert finding["type"] == FINDING
    assert finding["service"]["action"]["kubernetesApiCallAction"]["parameters"] == "kube-proxy"


def test_kubelet_requesting_tokens_for_pods_is_the_cluster_working():
    kubelet = {"username": "system:node:ip-10-0-1-5", "groups": ["system:nodes", "system:authenticated"]}
    assert types([token_request("kube-system", "coredns", user=kubelet)]) == set()


def test_token_for_an_application_account_is_not_reported():
    assert types([token_request("dev", "default")]) == set()


def test_ordinary_secret_in_kube_system_is_not_a_token():
    secret = {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
              "metadata": {"name": "registry", "namespace": "kube-system"}}
    assert types([api_event("create", "secrets", namespace="kube-system", body=secret)]) == set()
