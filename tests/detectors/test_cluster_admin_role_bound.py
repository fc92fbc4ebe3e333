"""PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound (audit-trail pack)."""

from __future__ import annotations

import json

from detectors.extension_cases import cluster_admin_binding
from detectors.scanning import scan, types, with_pack

FINDING = "PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound"


def test_granting_a_colleague_cluster_admin_is_recorded_with_the_pack():
    [finding] = scan([cluster_admin_binding("alice")], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert finding["service"]["action"]["kubernetesRoleBindingDetails"]["roleRefName"] == "cluster-admin"
    assert "User alice" in finding["description"]


def test_ordinary_administration_is_silent_by_default():
    assert types([cluster_admin_binding("alice")]) == set()


def test_bootstrap_binding_of_system_masters_is_not_recorded():
    apiserver = {"username": "system:apiserver", "groups": ["system:masters"]}
    assert with_pack([cluster_admin_binding("system:masters", user=apiserver)]) == set()


def test_falco_fixture(falco_dir):
    assert with_pack([json.loads((falco_dir / "attach_cluster_admin_role.json").read_text())]) == {FINDING}
