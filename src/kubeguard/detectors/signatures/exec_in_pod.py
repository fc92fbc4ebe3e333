"""Execution:Kubernetes/ExecInPod (kubeguard extension, audit-trail pack).

Every established exec or attach session outside kube-system (which GuardDuty's ExecInKubeSystemPod
covers, on by default). A shell in an application pod is how engineers debug, so this is an audit trail
of who ran what where (opt-in pack); GuardDuty's AnomalousBehavior.ExecInPod reports the unusual ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.signatures.exec_in_kube_system_pod import EXEC_WANTS, SYSTEM_NAMESPACE, exec_detection

FINDING = "Execution:Kubernetes/ExecInPod"


class ExecInPod:
    name = "exec-in-pod"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = EXEC_WANTS

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if event.namespace != SYSTEM_NAMESPACE:
            yield exec_detection(FINDING, event)
