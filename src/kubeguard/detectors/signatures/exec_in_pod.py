"""Execution:Kubernetes/ExecInPod (kubeguard extension, audit-trail pack).

Every established exec or attach session outside kube-system (which GuardDuty's ExecInKubeSystemPod
covers, on by default). A shell in an application pod is how engineers debug, so this is an audit trail
of who ran what where (opt-in pack); GuardDuty's AnomalousBehavior.ExecInPod reports the unusual ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.signatures.exec_in_kube_system_pod import SYSTEM_NAMESPACE, exec_command

FINDING = "Execution:Kubernetes/ExecInPod"


class ExecInPod:
    name = "exec-in-pod"
    finding_types = (FINDING,)
    wants = (("create", "pods/exec"), ("get", "pods/exec"), ("create", "pods/attach"), ("get", "pods/attach"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if event.namespace == SYSTEM_NAMESPACE:
            return
        command = exec_command(event.requestURI)
        yield make_detection(
            FINDING,
            event,
            key=f"{event.namespace}/{event.name}",
            description=(
                f"{who(event)} ran {command or 'a command'!r} through the {event.subresource} API in pod "
                f"{event.namespace}/{event.name} on cluster {event.cluster}."
            ),
            parameters=command,
        )
