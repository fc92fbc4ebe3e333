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
from kubeguard.detectors.workload import WORKLOAD_WRITES, launch_detection, read_workload, reported_through_owner

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
        if reported_through_owner(event, view, ctx.state, REPORTED_SHAPES, shape):
            return
        plural = "s" if len(shared) > 1 else ""
        yield launch_detection(FINDING, event, view, f"sharing the node's {', '.join(shared)} namespace{plural}.")
