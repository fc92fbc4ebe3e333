"""Typed views of the Kubernetes objects inside request and response bodies.

Bodies stay as raw bytes on the event until a detector needs one; these models then decode only the
fields detection reads. Each model ignores everything else, so an object from any API version, or a
strategic-merge patch that carries a fragment of one, decodes without error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from kubeguard.audit.event import AuditEvent

T = TypeVar("T")


class ObjectMeta(msgspec.Struct, omit_defaults=True):
    name: str = ""
    generateName: str = ""
    namespace: str = ""
    uid: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    ownerReferences: list[OwnerReference] = []


class OwnerReference(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    name: str = ""
    controller: bool = False


class Capabilities(msgspec.Struct, omit_defaults=True):
    add: list[str] = []
    drop: list[str] = []


class SecurityContext(msgspec.Struct, omit_defaults=True):
    privileged: bool | None = None
    allowPrivilegeEscalation: bool | None = None
    capabilities: Capabilities | None = None


class VolumeMount(msgspec.Struct, omit_defaults=True):
    name: str = ""
    mountPath: str = ""
    readOnly: bool = False


class Container(msgspec.Struct, omit_defaults=True):
    name: str = ""
    image: str = ""
    command: list[str] = []
    args: list[str] = []
    securityContext: SecurityContext | None = None
    volumeMounts: list[VolumeMount] = []


class HostPathSource(msgspec.Struct, omit_defaults=True):
    path: str = ""
    type: str = ""


class Volume(msgspec.Struct, omit_defaults=True):
    name: str = ""
    hostPath: HostPathSource | None = None


class PodSpec(msgspec.Struct, omit_defaults=True):
    containers: list[Container] = []
    initContainers: list[Container] = []
    ephemeralContainers: list[Container] = []
    volumes: list[Volume] = []
    hostNetwork: bool = False
    hostPID: bool = False
    hostIPC: bool = False
    serviceAccountName: str = ""
    serviceAccount: str = ""

    def all_containers(self) -> list[Container]:
        return [*self.initContainers, *self.containers, *self.ephemeralContainers]


class PodTemplate(msgspec.Struct, omit_defaults=True):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec | None = None


class JobSpec(msgspec.Struct, omit_defaults=True):
    template: PodTemplate | None = None


class JobTemplate(msgspec.Struct, omit_defaults=True):
    spec: JobSpec | None = None


class WorkloadSpec(PodSpec, omit_defaults=True):
    """The spec of a Pod, or of any pod-template owner (Deployment ... Job), or of a CronJob."""

    # Deployment, DaemonSet, StatefulSet, ReplicaSet, ReplicationController, Job
    template: PodTemplate | None = None
    # CronJob
    jobTemplate: JobTemplate | None = None


class Workload(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: WorkloadSpec | None = None

    def pod_spec(self) -> PodSpec | None:
        """The pod spec this object runs, wherever it sits in the object."""
        spec = self.spec
        if spec is None:
            return None
        if spec.template is not None:
            return spec.template.spec
        if spec.jobTemplate is not None and spec.jobTemplate.spec is not None:
            template = spec.jobTemplate.spec.template
            return template.spec if template is not None else None
        return spec


class Subject(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    name: str = ""
    namespace: str = ""


class RoleRef(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    name: str = ""


class RoleBinding(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    subjects: list[Subject] | None = None
    roleRef: RoleRef | None = None


class PolicyRule(msgspec.Struct, omit_defaults=True):
    verbs: list[str] = []
    apiGroups: list[str] = []
    resources: list[str] = []
    resourceNames: list[str] = []
    nonResourceURLs: list[str] = []


class Role(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    rules: list[PolicyRule] | None = None


class ServicePort(msgspec.Struct, omit_defaults=True):
    port: int = 0
    targetPort: int | str = 0


class ServiceSpec(msgspec.Struct, omit_defaults=True):
    type: str = ""
    selector: dict[str, str] = {}
    loadBalancerSourceRanges: list[str] = []
    ports: list[ServicePort] = []


class Service(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ServiceSpec | None = None


class ResourceAttributes(msgspec.Struct, omit_defaults=True):
    namespace: str = ""
    verb: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


class NonResourceAttributes(msgspec.Struct, omit_defaults=True):
    path: str = ""
    verb: str = ""


class AccessReviewSpec(msgspec.Struct, omit_defaults=True):
    resourceAttributes: ResourceAttributes | None = None
    nonResourceAttributes: NonResourceAttributes | None = None
    namespace: str = ""


class AccessReviewStatus(msgspec.Struct, omit_defaults=True):
    allowed: bool = False
    denied: bool = False


class AccessReview(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    spec: AccessReviewSpec | None = None
    status: AccessReviewStatus | None = None


class Secret(msgspec.Struct, omit_defaults=True):
    type: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


_decoders: dict[type, msgspec.json.Decoder] = {}
#: The last (body, model, result): several detectors often read the same body of the same event as the
#: same model (a role write is read by a tracker and by an anomaly detector). Holding the body keeps its
#: identity from being reused, and the tuple is replaced whole, so a reader never sees a torn entry.
_last: tuple[Any, type, Any] = (None, type(None), None)


def decode_body(raw: msgspec.Raw | bytes, model: type[T]) -> T | None:
    """Decode a body into ``model``; None when the body is absent or is not that kind of object."""
    global _last
    cached = _last
    if cached[0] is raw and cached[1] is model:
        return cached[2]
    result = _decode_body(raw, model)
    _last = (raw, model, result)
    return result


def _decode_body(raw: msgspec.Raw | bytes, model: type[T]) -> T | None:
    data = bytes(raw)
    if not data or data == b"null":
        return None
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def read_object(event: AuditEvent, model: type[T], complete: Callable[[T], bool]) -> T | None:
    """The object an event's bodies describe, as ``model``.

    The response is preferred, because it is the whole object after the change (a ``patch`` request
    carries only a fragment); the request is the fallback when the audit level left responses out. A
    ``Status`` answer, or an object without what ``complete`` requires, is not the object.
    """
    for body in (event.responseObject, event.requestObject):
        found = decode_body(body, model)
        if found is not None and getattr(found, "kind", "") != "Status" and complete(found):
            return found
    return None
