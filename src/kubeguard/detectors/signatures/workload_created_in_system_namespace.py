"""Persistence:Kubernetes/WorkloadCreatedInSystemNamespace (kubeguard extension, audit-trail pack).

kube-system and kube-public hold the control plane's add-ons and are where a workload blends in and
runs beside privileged identities. Administrators install add-ons there, so this is an audit trail
(opt-in pack). The pods a controller stamps out for an owner workload are not reported: the owner's
creation is, by whoever created it; the cluster's own components are not reported at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.identities import SYSTEM_NAMESPACES, made_by_system
from kubeguard.detectors.workload import WORKLOAD_RESOURCES, launch_detection, read_workload

FINDING = "Persistence:Kubernetes/WorkloadCreatedInSystemNamespace"


class WorkloadCreatedInSystemNamespace:
    name = "workload-created-in-system-namespace"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = tuple(("create", resource) for resource in WORKLOAD_RESOURCES)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if event.namespace not in SYSTEM_NAMESPACES or made_by_system(event):
            return
        view = read_workload(event)
        if view is None:
            return
        images = ", ".join(sorted({c.image for c in view.containers}))
        yield launch_detection(FINDING, event, view, f"running {images} in a system namespace.")
