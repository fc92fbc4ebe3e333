"""PrivilegeEscalation:Kubernetes/ContainerWithDangerousCapabilities (audit-trail pack)."""

from __future__ import annotations

import pytest

from detectors.extension_cases import with_capabilities
from detectors.scanning import scan, types, with_pack

FINDING = "PrivilegeEscalation:Kubernetes/ContainerWithDangerousCapabilities"


@pytest.mark.parametrize("capability", ["SYS_ADMIN", "CAP_SYS_MODULE", "sys_ptrace", "DAC_READ_SEARCH", "ALL"])
def test_escape_capabilities_are_found(capability):
    [finding] = scan([with_capabilities(capability)], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["name"] == "tool"


def test_reported_once_per_image_and_capability_like_privileged_container():
    first = with_capabilities("SYS_ADMIN")
    again = {**with_capabilities("SYS_ADMIN"), "auditID": "again"}
    [finding] = scan([first, again], packs=["audit-trail"])
    assert finding["service"]["count"] == 1


@pytest.mark.parametrize("capabilities", [("NET_ADMIN", "NET_RAW"), ("NET_BIND_SERVICE",), ("CHOWN", "SETUID")])
def test_service_mesh_and_ordinary_capabilities_are_not_reported(capabilities):
    assert with_pack([with_capabilities(*capabilities)]) == set()


def test_a_privileged_container_is_privileged_containers_finding():
    assert with_pack([with_capabilities("SYS_ADMIN", privileged=True)]) == {
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer"}


def test_off_by_default_storage_and_debug_tools_add_these_as_ordinary_work():
    assert types([with_capabilities("SYS_ADMIN")]) == set()
