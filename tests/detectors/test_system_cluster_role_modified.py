"""Persistence:Kubernetes/SystemClusterRoleModified."""

from __future__ import annotations

import json

from detectors.extension_cases import system_role_patch
from detectors.real_events import api_event
from detectors.scanning import scan, types

FINDING = "Persistence:Kubernetes/SystemClusterRoleModified"


def test_a_person_widening_system_discovery():
    [finding] = scan([system_role_patch()])
    assert finding["type"] == FINDING
    assert "modified the Kubernetes system ClusterRole system:discovery" in finding["description"]


def test_deleting_a_system_role_is_reported_by_name():
    record = api_event("delete", "clusterroles", name="system:kube-aggregator")
    record["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Success"}
    assert types([record]) == {FINDING}


def test_the_api_server_reconciling_its_policy_is_not_reported():
    assert types([system_role_patch(user={"username": "system:apiserver", "groups": ["system:masters"]})]) == set()


def test_an_add_on_role_under_a_system_name_is_not_kubernetes_own():
    assert types([system_role_patch("system:metrics-server", bootstrap=False)]) == set()


def test_falco_fixture_node_problem_detector_patch(falco_dir):
    record = json.loads((falco_dir / "modify_cluster_role_node_problem_detector.json").read_text())
    assert types([record]) == {FINDING}
