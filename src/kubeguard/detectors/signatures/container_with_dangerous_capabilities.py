"""PrivilegeEscalation:Kubernetes/ContainerWithDangerousCapabilities (kubeguard extension, audit-trail pack).

A container need not be ``privileged`` to escape: ``SYS_ADMIN`` mounts the host's filesystems and
cgroups, ``SYS_MODULE`` loads kernel modules, ``SYS_PTRACE`` (with the host's PIDs) injects into host
processes, ``DAC_READ_SEARCH`` reads any host file through a handle, ``SYS_RAWIO`` and ``BPF`` reach
the kernel. Like GuardDuty's PrivilegedContainer, it is reported the first time an image runs with such
a capability in a cluster, so a storage driver's DaemonSet does not raise on every rollout; a
privileged container already has every capability and is PrivilegedContainer's to report. The network
capabilities service meshes add to every pod (``NET_ADMIN``, ``NET_RAW``) are not on the list. Storage
and debugging tools add these capabilities as ordinary administration, so it ships in the opt-in pack.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Container
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.workload import WORKLOAD_WRITES, is_privileged, launch_detection, read_workload

FINDING = "PrivilegeEscalation:Kubernetes/ContainerWithDangerousCapabilities"
DANGEROUS = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "DAC_READ_SEARCH", "BPF",
                       "SYS_BOOT"})
#: State scope: (cluster, image, capability) combinations already launched.
SEEN = "workload.dangerous-capabilities"


def dangerous_capabilities(container: Container) -> list[str]:
    context = container.securityContext
    if context is None or context.capabilities is None or is_privileged(container):
        return []
    added = {c.upper().removeprefix("CAP_") for c in context.capabilities.add}
    return sorted(added & DANGEROUS)


class ContainerWithDangerousCapabilities:
    name = "container-with-dangerous-capabilities"
    finding_types = (FINDING,)
    wants = WORKLOAD_WRITES

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        view = read_workload(event)
        if view is None:
            return
        new = []
        for container in view.containers:
            for capability in dangerous_capabilities(container):
                if ctx.state.first_seen(SEEN, f"{event.cluster}\x1f{container.image}\x1f{capability}"):
                    new.append(f"{capability} in {container.name} ({container.image})")
        if not new:
            return
        yield launch_detection(
            FINDING, event, view,
            f"adding {', '.join(new)}: capabilities that let a container take over its node, never added to "
            f"these images in this cluster before.",
        )
