"""PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces (audit-trail pack)."""

from __future__ import annotations

import json

from detectors.extension_cases import host_network_pod
from detectors.scanning import scan, types, with_pack

FINDING = "PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces"


def test_host_network_and_pid_are_recorded_with_the_pack():
    [finding] = scan([host_network_pod()], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert "network, PID namespaces" in finding["description"]
    workload = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    assert workload["hostNetwork"] is True and workload["hostPID"] is True


def test_silent_by_default():
    assert types([host_network_pod()]) == set()


def test_falco_fixtures(falco_dir):
    assert with_pack([json.loads((falco_dir / "create_nginx_pod_hostnetwork.json").read_text())]) == {FINDING}
    assert with_pack([json.loads((falco_dir / "create_nginx_pod_nohostnetwork.json").read_text())]) == set()
