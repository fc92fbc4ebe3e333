"""Reading workloads out of audit events: which containers run, what they mount, how privileged.

Pods and every pod-template owner (Deployment, DaemonSet, StatefulSet, ReplicaSet,
ReplicationController, Job, CronJob) are read the same way, including init and ephemeral containers.
The response body is preferred because it is the whole object after the change (a ``patch`` request
carries only a fragment); the request body is the fallback when the audit level omits responses.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Container, PodSpec, Workload, read_object
from kubeguard.detectors.base import Detection, StateStore
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.effect import is_controller, patch_touches

WORKLOAD_RESOURCES = (
    "pods",
    "deployments",
    "daemonsets",
    "statefulsets",
    "replicasets",
    "replicationcontrollers",
    "jobs",
    "cronjobs",
)
#: ``kubectl debug`` adds containers to a running pod through this subresource.
EPHEMERAL_CONTAINERS = "pods/ephemeralcontainers"
WRITE_VERBS = ("create", "update", "patch")
#: What a workload detector declares it wants: every write of a workload or of ephemeral containers.
WORKLOAD_WRITES = tuple(
    (verb, resource) for verb in WRITE_VERBS for resource in (*WORKLOAD_RESOURCES, EPHEMERAL_CONTAINERS)
)

#: Host paths whose write access gives control of the node (DESIGN.md, "Sensitive host paths").
SENSITIVE_HOST_PATHS = frozenset(
    {
        "/", "/etc", "/root", "/home", "/boot", "/dev", "/proc", "/sys", "/bin", "/sbin", "/lib", "/lib64",
        "/usr", "/var", "/var/lib/kubelet", "/var/lib/docker", "/var/lib/containerd", "/var/log", "/run",
        "/var/run", "/etc/kubernetes",
        "/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
        "/var/run/containerd/containerd.sock", "/run/crio/crio.sock", "/var/run/crio/crio.sock",
        "/run/k3s/containerd/containerd.sock",
    }
)
#: Everything below these is sensitive too.
SENSITIVE_HOST_PREFIXES = ("/etc/", "/root/", "/var/lib/kubelet/", "/etc/kubernetes/")

#: Identities of the controllers that create pods on behalf of an owner workload.
_CONTROLLER_USERS = ("system:kube-controller-manager",)
_CONTROLLER_SA_PREFIX = "system:serviceaccount:kube-system:"


@dataclass(slots=True)
class WorkloadView:
    """A decoded workload and where it came from."""

    obj: Workload
    pod: PodSpec
    resource: str
    #: ``kubectl debug`` (the ephemeralcontainers subresource) launches only the pod's ephemeral
    #: containers; the containers already running were judged when the pod was created.
    ephemeral_only: bool = False

    @property
    def containers(self) -> list[Container]:
        return list(self.pod.ephemeralContainers) if self.ephemeral_only else self.pod.all_containers()


#: Where each kind keeps the pod spec: a patch that touches nothing there launches nothing new.
_POD_SPEC_PATHS = {
    "pods": ("spec",),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_TEMPLATE_SPEC_PATH = ("spec", "template", "spec")


def launches(event: AuditEvent) -> bool:
    """Whether this workload write can start something not judged before.

    A create always can; ``kubectl debug`` (ephemeral containers) always does. An update or patch by
    the cluster's own controllers copies a template someone else wrote, and a patch that leaves the pod
    spec alone (scale, labels, ``kubectl rollout restart``'s annotation) starts the same containers again.
    """
    if event.verb == "create" or event.subresource:
        return True
    if is_controller(event):
        return False
    return patch_touches(event, _POD_SPEC_PATHS.get(event.resource, _TEMPLATE_SPEC_PATH))


def read_workload(event: AuditEvent) -> WorkloadView | None:
    """The workload a successful write created or changed; None for any other event."""
    if not is_workload_write(event) or not launches(event):
        return None
    obj = read_object(event, Workload, _runs_containers)
    if obj is None:
        return None
    pod = obj.pod_spec()
    assert pod is not None  # _runs_containers checked it
    return WorkloadView(obj=obj, pod=pod, resource=event.resource, ephemeral_only=bool(event.subresource))


def _runs_containers(obj: Workload) -> bool:
    pod = obj.pod_spec()
    return pod is not None and bool(pod.all_containers())


def is_workload_write(event: AuditEvent) -> bool:
    if event.verb not in WRITE_VERBS or not event.succeeded:
        return False
    if event.subresource:
        return f"{event.resource}/{event.subresource}" == EPHEMERAL_CONTAINERS
    return event.resource in WORKLOAD_RESOURCES


def created_by_controller(event: AuditEvent, view: WorkloadView) -> bool:
    """A pod stamped out by a controller for an owner workload; the owner is what a finding names."""
    user = event.user.username
    is_controller = user in _CONTROLLER_USERS or user.startswith(_CONTROLLER_SA_PREFIX)
    return is_controller and any(ref.controller for ref in view.obj.metadata.ownerReferences)


def image_prefix(image: str) -> str:
    """GuardDuty's imagePrefix: everything before the last ``/``; empty for a bare name."""
    head, sep, _ = image.rpartition("/")
    return head if sep else ""


def is_privileged(container: Container) -> bool:
    return bool(container.securityContext and container.securityContext.privileged)


def is_sensitive_host_path(path: str) -> bool:
    normalized = posixpath.normpath(path) if path else ""
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    return normalized in SENSITIVE_HOST_PATHS or normalized.startswith(SENSITIVE_HOST_PREFIXES)


def sensitive_mounts(view: WorkloadView) -> list[tuple[Container, str, str]]:
    """(container, host path, mount path) for every writable mount of a sensitive host path."""
    host_paths = {
        volume.name: volume.hostPath.path
        for volume in view.pod.volumes
        if volume.hostPath is not None and is_sensitive_host_path(volume.hostPath.path)
    }
    found = []
    for container in view.containers:
        for mount in container.volumeMounts:
            if mount.name in host_paths and not mount.readOnly:
                found.append((container, host_paths[mount.name], mount.mountPath))
    return found


def workload_details(event: AuditEvent, view: WorkloadView) -> dict[str, Any]:
    """GuardDuty's ``kubernetesWorkloadDetails`` for this workload."""
    meta = view.obj.metadata
    pod = view.pod
    details: dict[str, Any] = {
        "name": meta.name or event.name,
        "type": view.resource,
        "uid": meta.uid or (event.objectRef.uid if event.objectRef else ""),
        "namespace": meta.namespace or event.namespace,
        "serviceAccountName": pod.serviceAccountName or pod.serviceAccount or "default",
        "hostNetwork": pod.hostNetwork,
        "hostIPC": pod.hostIPC,
        "hostPID": pod.hostPID,
        "containers": [_container_details(c) for c in pod.all_containers()],
    }
    volumes = [
        {"name": v.name, "hostPath": {"path": v.hostPath.path}} for v in pod.volumes if v.hostPath is not None
    ]
    if volumes:
        details["volumes"] = volumes
    return details


def _container_details(container: Container) -> dict[str, Any]:
    details: dict[str, Any] = {
        "name": container.name,
        "image": container.image,
        "imagePrefix": image_prefix(container.image),
    }
    context = container.securityContext
    if context is not None:
        security: dict[str, Any] = {}
        if context.privileged is not None:
            security["privileged"] = context.privileged
        if context.allowPrivilegeEscalation is not None:
            security["allowPrivilegeEscalation"] = context.allowPrivilegeEscalation
        if security:
            details["securityContext"] = security
    if container.volumeMounts:
        details["volumeMounts"] = [{"name": m.name, "mountPath": m.mountPath} for m in container.volumeMounts]
    return details


def workload_key(event: AuditEvent, view: WorkloadView) -> str:
    """The aggregation key of a workload finding: the object, stable across updates."""
    meta = view.obj.metadata
    namespace = meta.namespace or event.namespace
    return f"{view.resource}/{namespace}/{meta.name or event.name}"


def reported_through_owner(event: AuditEvent, view: WorkloadView, state: StateStore, scope: str, shape: str) -> bool:
    """Whether a controller's pod repeats a ``shape`` already reported (on its owner); else remember it.

    The owner workload's creation names the workload a finding is about; the pods a controller stamps
    out from it would raise one finding per replica and rollout. When the owner's creation is not in the
    log, its first pod is the only sign and is reported.
    """
    if created_by_controller(event, view) and state.seen(scope, shape):
        return True
    state.first_seen(scope, shape)
    return False


def launch_detection(finding: str, event: AuditEvent, view: WorkloadView, what: str, **fields: Any) -> Detection:
    """A workload finding: keyed by the workload, its details attached, described as a launch."""
    details = workload_details(event, view)
    return make_detection(
        finding,
        event,
        key=workload_key(event, view),
        description=(
            f"{who(event)} launched {view.resource} {details['namespace']}/{details['name']} on cluster "
            f"{event.cluster} {what}"
        ),
        workload=details,
        **fields,
    )
