"""Persistence:Kubernetes/ContainerWithSensitiveMount — a writable mount of a sensitive host path.

Write access to ``/etc``, the kubelet's directory, a runtime socket and the like lets a container plant
files on the node or take over its runtime (DESIGN.md lists the paths). Pods stamped out by a controller
for an owner workload are not reported again when the owner's creation already named the same images and
host paths; when the log starts after the owner was created, the first such pod is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Container
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.workload import (
    WORKLOAD_WRITES,
    launch_detection,
    read_workload,
    reported_through_owner,
    sensitive_mounts,
)

FINDING = "Persistence:Kubernetes/ContainerWithSensitiveMount"
#: State scope: (cluster, namespace, image and host path) combinations already reported.
REPORTED_SHAPES = "workload.sensitive-mount-shapes"


def mount_shape(cluster: str, namespace: str, mounts: list[tuple[Container, str, str]]) -> str:
    """What a controller's copy of a reported workload has in common with it: images and host paths."""
    parts = sorted({f"{container.image}={host}" for container, host, _ in mounts})
    return "\x1f".join([cluster, namespace, *parts])


class ContainerWithSensitiveMount:
    name = "container-with-sensitive-mount"
    finding_types = (FINDING,)
    wants = WORKLOAD_WRITES

    @staticmethod
    def relevant(event: AuditEvent) -> bool:
        """False when :meth:`detect` would find and record nothing: no writable sensitive mount."""
        view = read_workload(event)
        return view is not None and bool(sensitive_mounts(view))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        view = read_workload(event)
        if view is None:
            return
        mounts = sensitive_mounts(view)
        if not mounts:
            return
        namespace = view.obj.metadata.namespace or event.namespace
        shape = mount_shape(event.cluster, namespace, mounts)
        if reported_through_owner(event, view, ctx.state, REPORTED_SHAPES, shape):
            return
        listed = ", ".join(f"{host} at {path} in {c.name}" for c, host, path in mounts)
        yield launch_detection(
            FINDING, event, view, f"with writable host path mounts: {listed}.",
            parameters=", ".join(sorted({host for _, host, _ in mounts})),
        )
