"""PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces (kubeguard extension, audit-trail pack).

``hostNetwork`` sees and binds the node's interfaces (and its cloud metadata endpoint), ``hostPID``
sees and signals every process on the node, ``hostIPC`` shares its memory segments: each weakens the
wall between a container and its node. CNI plugins, ingress controllers and node agents need them, so
this is an audit trail (opt-in pack). Pods a controller stamps out for an owner are reported through
the owner; when the owner's creation is not in the log, the first such pod is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.workload import (
    WORKLOAD_WRITES,
    created_by_controller,
    read_workload,
    workload_details,
    workload_key,
)

FINDING = "PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces"
#: State scope: (cluster, namespace, images, shared namespaces) already reported.
REPORTED_SHAPES = "workload.host-namespace-shapes"


class WorkloadInHostNamespaces:
    name = "workload-in-host-namespaces"
    finding_types = (FINDING,)
    wants = WORKLOAD_WRITES

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        view = read_workload(event)
        if view is None:
            return
        pod = view.pod
        shared = [name for name, on in (("network", pod.hostNetwork), ("PID", pod.hostPID), ("IPC", pod.hostIPC))
                  if on]
        if not shared:
            return
        namespace = view.obj.metadata.namespace or event.namespace
        shape = "\x1f".join([event.cluster, namespace, *shared, *sorted({c.image for c in view.containers})])
        if created_by_controller(event, view) and ctx.state.seen(REPORTED_SHAPES, shape):
            return
        ctx.state.first_seen(REPORTED_SHAPES, shape)
        details = workload_details(event, view)
        yield make_detection(
            FINDING,
            event,
            key=workload_key(event, view),
            description=(
                f"{who(event)} launched {view.resource} {details['namespace']}/{details['name']} on cluster "
                f"{event.cluster} sharing the node's {', '.join(shared)} namespace{'s' if len(shared) > 1 else ''}."
            ),
            workload=details,
        )
