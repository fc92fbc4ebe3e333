"""Policy:Kubernetes/NodePortServiceCreated (kubeguard extension, audit-trail pack).

A NodePort Service opens its port on every node, past the load balancers and ingress rules a team
reviews, and nodes often have public addresses. Teams also use NodePorts on purpose, so this is an
audit trail (opt-in pack); a dashboard exposed that way is GuardDuty's ExposedDashboard, on by default.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.effect import patch_touches
from kubeguard.detectors.signatures.exposed_dashboard import read_service

FINDING = "Policy:Kubernetes/NodePortServiceCreated"


class NodePortServiceCreated:
    name = "node-port-service-created"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = (("create", "services"), ("update", "services"), ("patch", "services"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if not patch_touches(event, ("spec", "type"), ("spec", "ports")):
            return
        service = read_service(event)
        if service is None or service.spec is None or service.spec.type != "NodePort":
            return
        namespace = service.metadata.namespace or event.namespace
        name = service.metadata.name or event.name
        ports = ", ".join(str(p.port) for p in service.spec.ports) or "its ports"
        yield make_detection(
            FINDING,
            event,
            key=f"services/{namespace}/{name}",
            description=(
                f"{who(event)} made Service {namespace}/{name} a NodePort on cluster {event.cluster}, "
                f"opening {ports} on every node."
            ),
            parameters='{"spec":{"type":"NodePort"}}',
        )
