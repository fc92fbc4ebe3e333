"""Persistence:Kubernetes/WorkloadCreatedInSystemNamespace (audit-trail pack)."""

from __future__ import annotations

from detectors.extension_cases import system_namespace_deployment
from detectors.scanning import scan, types, with_pack

FINDING = "Persistence:Kubernetes/WorkloadCreatedInSystemNamespace"


def test_a_person_creating_a_deployment_in_kube_system():
    [finding] = scan([system_namespace_deployment()], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["namespace"] == "kube-system"


def test_silent_by_default_and_for_controllers():
    assert types([system_namespace_deployment()]) == set()
    controller = {"username": "system:serviceaccount:kube-system:replicaset-controller"}
    assert with_pack([system_namespace_deployment(user=controller)]) == set()


def test_a_dry_run_creates_nothing():
    record = system_namespace_deployment()
    record["requestURI"] += "?dryRun=All"
    assert with_pack([record]) == set()
