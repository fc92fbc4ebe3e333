"""PrivilegeEscalation:Kubernetes/PrivilegedContainer — an image's first privileged launch in a cluster.

A privileged container has the node's devices and capabilities: root on the node. GuardDuty raises this
the first time an image is launched privileged in a cluster, so that a DaemonSet that has always run
privileged (a CNI, a storage driver) does not raise again on every rollout. The memory of which images
have run privileged lives in the detector state, so a restart does not re-alert.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.workload import WORKLOAD_WRITES, is_privileged, launch_detection, read_workload

FINDING = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
PRIVILEGED_IMAGES = "workload.privileged-images"


class PrivilegedContainer:
    name = "privileged-container"
    finding_types = (FINDING,)
    wants = WORKLOAD_WRITES

    @staticmethod
    def relevant(event: AuditEvent) -> bool:
        """False when :meth:`detect` would find and record nothing: no privileged container."""
        view = read_workload(event)
        return view is not None and any(is_privileged(c) for c in view.containers)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        view = read_workload(event)
        if view is None:
            return
        new_images = [
            c.image
            for c in view.containers
            if is_privileged(c) and ctx.state.first_seen(PRIVILEGED_IMAGES, f"{event.cluster}\x1f{c.image}")
        ]
        if not new_images:
            return
        yield launch_detection(
            FINDING, event, view,
            f"with a privileged container running {', '.join(new_images)}, an image never run privileged in "
            f"this cluster before.",
        )
