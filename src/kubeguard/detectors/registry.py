"""Every detector kubeguard ships, in one list.

A detector family adds itself here; the engine, the docs (``kubeguard rules``) and the API's list of
finding types all read this list.
"""

from __future__ import annotations

from kubeguard.detectors.anomaly.detectors import anomaly_detectors
from kubeguard.detectors.base import Detector
from kubeguard.detectors.callers.anonymous import SuccessfulAnonymousAccess
from kubeguard.detectors.callers.threat_intel import ThreatIntelCaller
from kubeguard.detectors.signatures.admin_access_to_default_service_account import (
    AdminAccessToDefaultServiceAccount,
)
from kubeguard.detectors.signatures.anonymous_access_granted import AnonymousAccessGranted
from kubeguard.detectors.signatures.container_with_sensitive_mount import ContainerWithSensitiveMount
from kubeguard.detectors.signatures.exec_in_kube_system_pod import ExecInKubeSystemPod
from kubeguard.detectors.signatures.exposed_dashboard import ExposedDashboard
from kubeguard.detectors.signatures.privileged_container import PrivilegedContainer
from kubeguard.detectors.signatures.trackers import KubeflowTracker, WildcardRoleTracker


def default_detectors() -> list[Detector]:
    """Trackers first: they record facts the detectors after them read for the same event."""
    return [
        WildcardRoleTracker(),
        KubeflowTracker(),
        SuccessfulAnonymousAccess(),
        ThreatIntelCaller(),
        ExecInKubeSystemPod(),
        AdminAccessToDefaultServiceAccount(),
        AnonymousAccessGranted(),
        ExposedDashboard(),
        PrivilegedContainer(),
        ContainerWithSensitiveMount(),
        *anomaly_detectors(),  # the learner comes last: each action is judged against history before it
    ]
