"""Every detector kubeguard ships, in one list.

A detector family adds itself here; the engine, the docs (``kubeguard rules``) and the API's list of
finding types all read this list. kubeguard's own detections beyond GuardDuty's catalogue are on by
default when they stay silent on ordinary administration; the audit-trail ones ship in an opt-in pack
(``[detectors] packs = ["audit-trail"]``, ``scan --pack audit-trail``).
"""

from __future__ import annotations

from collections.abc import Iterable

from kubeguard.detectors.anomaly.detectors import anomaly_detectors
from kubeguard.detectors.base import Detector
from kubeguard.detectors.callers.anonymous import SuccessfulAnonymousAccess
from kubeguard.detectors.callers.threat_intel import ThreatIntelCaller
from kubeguard.detectors.signatures import extensions
from kubeguard.detectors.signatures.admin_access_to_default_service_account import (
    AdminAccessToDefaultServiceAccount,
)
from kubeguard.detectors.signatures.anonymous_access_granted import AnonymousAccessGranted
from kubeguard.detectors.signatures.container_with_sensitive_mount import ContainerWithSensitiveMount
from kubeguard.detectors.signatures.exec_in_kube_system_pod import ExecInKubeSystemPod
from kubeguard.detectors.signatures.exposed_dashboard import ExposedDashboard
from kubeguard.detectors.signatures.privileged_container import PrivilegedContainer
from kubeguard.detectors.signatures.trackers import KubeflowTracker, WildcardRoleTracker
from kubeguard.findings.types import AUDIT_TRAIL_PACK

#: Opt-in packs by name: the audit-trail pack reports who did the powerful things ordinary
#: administration also does.
PACKS = {AUDIT_TRAIL_PACK: extensions.audit_trail}


def pack_detectors(packs: Iterable[str]) -> list[Detector]:
    """The detectors of the named packs; an unknown name is an error that lists the known ones."""
    found: list[Detector] = []
    for pack in dict.fromkeys(packs):
        if pack not in PACKS:
            raise ValueError(f"unknown detection pack {pack!r} (known: {', '.join(sorted(PACKS))})")
        found.extend(PACKS[pack]())
    return found


def default_detectors(packs: Iterable[str] = ()) -> list[Detector]:
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
        *extensions.on_by_default(),
        *pack_detectors(packs),
        *anomaly_detectors(),  # the learner comes last: each action is judged against history before it
    ]
