"""The eight AnomalousBehavior findings: candidates by content, judged against the caller's profile.

Each detector picks the actions GuardDuty names for its type (reading secrets, binding a powerful role,
exec, deploying a workload, writing an excessive role, checking a powerful permission) and asks
:mod:`~kubeguard.detectors.anomaly.scoring` whether the action is unusual for the principal. The
:class:`AnomalyLearner` runs after them on every event and adds it to the profiles, so an action is
always judged against the history *before* it. All are silent while ``ctx.baselines`` is None
(anomaly detection disabled) or while the cluster or principal is still learning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import AccessReview, read_object
from kubeguard.detectors import rbac, workload
from kubeguard.detectors.anomaly import explain
from kubeguard.detectors.anomaly import features as f
from kubeguard.detectors.anomaly.baselines import Baselines, Observation, observe, pending_key
from kubeguard.detectors.anomaly.scoring import CLUSTER, USER, Unusual, Verdict, decide, judge
from kubeguard.detectors.anomaly.suspicious import (
    SENSITIVE_NAMESPACES,
    image_repository,
    is_powerful_permission,
    permission_name,
    role_excesses,
    suspicious_command,
    suspicious_image,
)
from kubeguard.detectors.base import (
    ANY,
    SEVERITY_HIGH,
    SEVERITY_MEDIUM,
    Detection,
    DetectionContext,
)
from kubeguard.detectors.common import api_call, make_detection
from kubeguard.detectors.effect import Outcome

SECRETS_ACCESSED = "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"
ROLE_BINDING_CREATED = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated"
EXEC_IN_POD = "Execution:Kubernetes/AnomalousBehavior.ExecInPod"
DEPLOYED_PRIVILEGED = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
DEPLOYED_SENSITIVE_MOUNT = "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount"
WORKLOAD_DEPLOYED = "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed"
ROLE_CREATED = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated"
PERMISSION_CHECKED = "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked"

WRITES = ("create", "update", "patch")
#: The control plane's own identities (loopback and component certificates). Their calls are learned but
#: never judged: at every start they re-create the bootstrap roles, bindings and reads by design, and no
#: attacker acts as them without already owning the control plane.
CONTROL_PLANE_IDENTITIES = frozenset({"system:apiserver", "system:kube-controller-manager", "system:kube-scheduler"})
#: Built-in ClusterRoles that grant secrets and exec across a namespace: overly permissive to bind.
PERMISSIVE_CLUSTER_ROLES = rbac.ADMIN_CLUSTER_ROLES | {"edit"}
#: Role excesses that are risky on their own; reading secrets alone needs a second unusual attribute.
_RISKY_EXCESSES = ("wildcard verbs", "wildcard resources", "verbs", "pods/exec", "serviceaccounts/token",
                   "nodes/proxy")
ACCESS_REVIEWS = ("selfsubjectaccessreviews", "subjectaccessreviews", "selfsubjectrulesreviews")


def _observation(event: AuditEvent, baselines: Baselines) -> Observation:
    """The event's features, computed once per event for the detectors and the learner."""
    memo = baselines.memo
    if memo is not None and memo[0] is event:
        return memo[1]
    seen = observe(event)
    baselines.memo = (event, seen)
    return seen


def evaluate(
    event: AuditEvent,
    ctx: DetectionContext,
    *,
    risky: bool,
    extra: dict[str, list[str]] | None = None,
) -> tuple[Verdict, dict[str, Any]] | None:
    """Score ``event`` against its principal's profile; the verdict and its wire explanation, or None.

    ``extra`` carries values read from the body (images, the checked permission): they are judged both
    for the principal and for the cluster, since an image nobody in the cluster ever ran is news even
    for a principal that deploys all day.
    """
    baselines: Baselines | None = ctx.baselines
    if baselines is None or event.user.username in CONTROL_PLANE_IDENTITIES:
        return None
    if baselines.cluster_learning(event):
        return None
    baselines.flush_owner(event)
    seen = _observation(event, baselines)
    if baselines.learning(seen):
        return None
    cluster = baselines.clusters[seen.cluster]
    profile = cluster.principals[seen.principal]
    at = seen.at
    unusual: list[Unusual] = []
    for name, value in seen.values.items():
        found = judge(profile.features.get(name), value, at, USER, name)
        if found is not None:
            unusual.append(found)
    for name, values in (extra or {}).items():
        total = profile.events if name == f.PERMISSION else None
        for value in values:
            found = judge(profile.features.get(name), value, at, USER, name, total)
            if found is not None:
                unusual.append(found)
            found = judge(cluster.features.get(name), value, at, CLUSTER, name)
            if found is not None:
                unusual.append(found)
    verdict = decide(unusual, risky)
    if not verdict.fire:
        return None
    names = [*seen.values, *(extra or {})]
    return verdict, {
        "anomaly": explain.anomaly(verdict, profile, cluster, names),
        "additional_info": explain.additional_info(verdict),
    }


def _detection(type_name: str, event: AuditEvent, key: str, action: str, result: tuple[Verdict, dict[str, Any]],
               severity: float | None = None, **fields: Any) -> Detection:
    verdict, wire = result
    principal = f.principal(event)
    return make_detection(type_name, event, key=key, severity=severity,
                          description=explain.sentence(action, principal, verdict), **wire, **fields)


class _Judged:
    """The anomaly detectors judge nobody in :data:`CONTROL_PLANE_IDENTITIES`: :func:`evaluate` returns
    before it reads or changes anything, and nothing before it changes state either.

    ``relevant`` reads no body on purpose: tests that also read the candidate bodies (a role's excesses, a
    controller's pod) sent fewer events whole (lab 200k: 7,956 -> 4,896) but cost the mappers more than
    the reducer saved once :meth:`learning` skips a young cluster's events undecoded (callgrind, 40k lab
    events mapped and reduced: 2,759M instructions with them, 2,697M without).
    """

    @staticmethod
    def relevant(event: AuditEvent) -> bool:
        """False when :meth:`detect` would find nothing and change nothing (a split scan skips the event)."""
        return event.user.username not in CONTROL_PLANE_IDENTITIES

    @staticmethod
    def learning(cluster: str, stamp: str, ctx: DetectionContext) -> bool:
        """True when :meth:`detect` returns nothing at once for an event of ``cluster`` at ``stamp``: anomaly
        detection is off, or the cluster is in its learning period (:func:`evaluate` would return there, and
        nothing before it reads a body or changes state). Each ``detect`` asks first, so a young cluster's
        candidates cost no body decoding; a split scan's reducer asks before it decodes an event sent whole
        (lab and simulator logs, 200k events: every one of the 4,131 and 4,193 judgements falls there).
        Past this test a ``detect`` knows the baselines are there."""
        baselines: Baselines | None = ctx.baselines
        return baselines is None or baselines.in_learning_period(cluster, stamp)


class SecretsAccessedAnomaly(_Judged):
    """Reading secrets in a way this principal does not (reference §1.5, SecretsAccessed)."""

    name: ClassVar[str] = "anomaly.secrets-accessed"
    finding_types: ClassVar[tuple[str, ...]] = (SECRETS_ACCESSED,)
    wants: ClassVar[tuple[tuple[str, str], ...]] = (("get", "secrets"), ("list", "secrets"), ("watch", "secrets"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if self.learning(event.cluster, event.event_time, ctx):
            return ()
        if not event.succeeded:
            return ()
        everywhere = event.verb != "get" and not event.namespace
        result = evaluate(event, ctx, risky=everywhere)
        if result is None:
            return ()
        where = f"in namespace {event.namespace}" if event.namespace else "across all namespaces"
        action = f"called {api_call(event)} {where}"
        return [_detection(SECRETS_ACCESSED, event, f"secrets/{event.namespace or '*'}", action, result)]


class RoleBindingCreatedAnomaly(_Judged):
    """Binding an overly permissive role, or binding in a sensitive namespace, anomalously."""

    name: ClassVar[str] = "anomaly.role-binding-created"
    finding_types: ClassVar[tuple[str, ...]] = (ROLE_BINDING_CREATED,)
    wants: ClassVar[tuple[tuple[str, str], ...]] = tuple(
        (verb, resource) for verb in WRITES for resource in rbac.BINDING_RESOURCES
    )

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if self.learning(event.cluster, event.event_time, ctx):
            return ()
        binding = rbac.read_binding(event)
        if binding is None or binding.roleRef is None:
            return ()
        admin = rbac.is_admin_role_ref(event, binding, ctx.state)
        ref = binding.roleRef
        permissive = admin or (ref.kind == "ClusterRole" and ref.name in PERMISSIVE_CLUSTER_ROLES)
        namespace = binding.metadata.namespace or event.namespace
        if not permissive and namespace not in SENSITIVE_NAMESPACES:
            return ()
        result = evaluate(event, ctx, risky=permissive)
        if result is None:
            return ()
        details = rbac.binding_details(event, binding)
        action = f"called {api_call(event)} {details['name']} to {ref.kind} {ref.name}"
        return [_detection(ROLE_BINDING_CREATED, event, rbac.binding_key(event, binding), action, result,
                           severity=SEVERITY_HIGH if admin else None, role_binding=details)]


class ExecInPodAnomaly(_Judged):
    """A command run in a pod through the exec API, unusually for the caller."""

    name: ClassVar[str] = "anomaly.exec-in-pod"
    finding_types: ClassVar[tuple[str, ...]] = (EXEC_IN_POD,)
    wants: ClassVar[tuple[tuple[str, str], ...]] = (("create", "pods/exec"), ("get", "pods/exec"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if self.learning(event.cluster, event.event_time, ctx):
            return ()
        result = evaluate(event, ctx, risky=event.namespace in SENSITIVE_NAMESPACES)
        if result is None:
            return ()
        pod = f"{event.namespace}/{event.name}"
        return [_detection(EXEC_IN_POD, event, pod, f"ran a command in pod {pod}", result)]


class WorkloadDeployedAnomaly(_Judged):
    """A workload created or changed anomalously: privileged, with a sensitive mount, or plain."""

    name: ClassVar[str] = "anomaly.workload-deployed"
    finding_types: ClassVar[tuple[str, ...]] = (DEPLOYED_PRIVILEGED, DEPLOYED_SENSITIVE_MOUNT, WORKLOAD_DEPLOYED)
    wants: ClassVar[tuple[tuple[str, str], ...]] = tuple(
        (verb, resource)
        for verb in WRITES
        for resource in (*workload.WORKLOAD_RESOURCES, workload.EPHEMERAL_CONTAINERS)
    )

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if self.learning(event.cluster, event.event_time, ctx):
            return ()
        view = workload.read_workload(event)
        if view is None or workload.created_by_controller(event, view):
            return ()
        containers = view.containers
        privileged = any(workload.is_privileged(c) for c in containers)
        mounts = workload.sensitive_mounts(view)
        suspicious = [s for c in containers for s in (suspicious_image(c.image), suspicious_command(c)) if s]
        pod = view.pod
        risky = privileged or bool(mounts) or bool(suspicious) or pod.hostPID or pod.hostNetwork
        images = sorted({image_repository(c.image) for c in containers if c.image})
        result = evaluate(event, ctx, risky=risky, extra={f.IMAGE: images})
        if result is None:
            return ()
        details = workload.workload_details(event, view)
        key = workload.workload_key(event, view)
        action = f"called {api_call(event)} {details['namespace']}/{details['name']}"
        found = []
        if privileged:
            found.append(_detection(DEPLOYED_PRIVILEGED, event, key, action + " with a privileged container",
                                    result, workload=details))
        if mounts:
            paths = ", ".join(sorted({path for _, path, _ in mounts}))
            found.append(_detection(DEPLOYED_SENSITIVE_MOUNT, event, key,
                                    f"{action} mounting host path {paths} writable", result, workload=details))
        if not found:
            severity = SEVERITY_MEDIUM if suspicious else None
            if suspicious:
                result[1]["additional_info"]["suspicious"] = suspicious
            found.append(_detection(WORKLOAD_DEPLOYED, event, key, action, result, severity=severity,
                                    workload=details))
        return found


class RoleCreatedAnomaly(_Judged):
    """A Role or ClusterRole with excessive permissions written anomalously."""

    name: ClassVar[str] = "anomaly.role-created"
    finding_types: ClassVar[tuple[str, ...]] = (ROLE_CREATED,)
    wants: ClassVar[tuple[tuple[str, str], ...]] = tuple(
        (verb, resource) for verb in WRITES for resource in rbac.ROLE_RESOURCES
    )

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if self.learning(event.cluster, event.event_time, ctx):
            return ()
        if not event.succeeded:
            return ()
        role = rbac.read_role(event)
        if role is None:
            return ()
        excesses = role_excesses(role)
        if not excesses:
            return ()
        risky = any(e.startswith(_RISKY_EXCESSES) for e in excesses)
        result = evaluate(event, ctx, risky=risky)
        if result is None:
            return ()
        kind = role.kind or ("ClusterRole" if event.resource == "clusterroles" else "Role")
        name = role.metadata.name or event.name
        namespace = role.metadata.namespace or event.namespace
        result[1]["additional_info"]["excessivePermissions"] = excesses
        action = f"called {api_call(event)} {name} granting {', '.join(excesses)}"
        return [_detection(ROLE_CREATED, event, rbac.role_key(event.cluster, kind, namespace, name), action, result,
                           role={"kind": kind, "name": name, "uid": role.metadata.uid})]


def read_review(event: AuditEvent) -> AccessReview | None:
    """The access review as answered (response), else as asked."""
    return read_object(event, AccessReview, lambda review: review.spec is not None)


def checked_permission(event: AuditEvent) -> tuple[str, dict[str, Any], bool] | None:
    """(profile value, kubernetesPermissionCheckedDetails, powerful) of a successful access review."""
    review = read_review(event)
    if review is None or review.spec is None:
        return None
    allowed = bool(review.status.allowed) if review.status is not None else False
    attributes = review.spec.resourceAttributes
    if attributes is None:
        namespace = review.spec.namespace or event.namespace
        details = {"verb": "list", "resource": "rules", "namespace": namespace, "allowed": allowed}
        return "list rules", details, False
    resource = f"{attributes.resource}/{attributes.subresource}" if attributes.subresource else attributes.resource
    details = {"verb": attributes.verb or "*", "resource": resource or "*", "namespace": attributes.namespace,
               "allowed": allowed}
    return permission_name(attributes), details, is_powerful_permission(attributes)


class PermissionCheckedAnomaly(_Judged):
    """A successful check of a powerful permission (``kubectl auth can-i``), unusual for the caller."""

    name: ClassVar[str] = "anomaly.permission-checked"
    finding_types: ClassVar[tuple[str, ...]] = (PERMISSION_CHECKED,)
    wants: ClassVar[tuple[tuple[str, str], ...]] = tuple(("create", resource) for resource in ACCESS_REVIEWS)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if self.learning(event.cluster, event.event_time, ctx):
            return ()
        if not event.succeeded:
            return ()
        checked = checked_permission(event)
        if checked is None:
            return ()
        permission, details, powerful = checked
        if not powerful and event.resource != "selfsubjectrulesreviews":
            return ()
        result = evaluate(event, ctx, risky=powerful, extra={f.PERMISSION: [permission]})
        if result is None:
            return ()
        action = f"checked the permission {permission}"
        return [_detection(PERMISSION_CHECKED, event, permission, action, result, permission_check=details)]


class AnomalyLearner:
    """Adds every event to the profiles, after the anomaly detectors have judged it (register it last)."""

    name: ClassVar[str] = "anomaly.learner"
    finding_types: ClassVar[tuple[str, ...]] = ()
    wants: ClassVar[tuple[tuple[str, str], ...]] = ((ANY, ANY),)
    #: A caller's habits include the calls that failed; a dry run teaches nothing (it must not make the
    #: later real deployment of an image look familiar).
    outcomes: ClassVar[frozenset[Outcome]] = frozenset({Outcome.APPLIED, Outcome.FAILED})

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        baselines: Baselines | None = ctx.baselines
        if baselines is None:
            return ()
        baselines.memo = None
        baselines.defer(event)
        ref = event.objectRef
        if ref is None or ref.resource not in _BODY_RESOURCES:  # most events: no body feature to read
            return ()
        extra = _body_values(event)
        if extra is not None:
            # Images and permissions are learned at once: they are what cluster-wide judgements read.
            baselines.learn(Observation(event.cluster, f.principal(event), f.event_seconds(event), {}), extra, times=0)
        return ()

    @staticmethod
    def prepare(event: AuditEvent) -> tuple[Any, ...]:
        """What :meth:`detect` learns of ``event``, read from the event alone: its pending key and its body's
        values. A split scan (``kubeguard.split_scan``) prepares an event it sends whole to the reducer in
        the decoding process, and the reducer applies it after the detectors judged the event."""
        owner, action, stamp = pending_key(event)
        ref = event.objectRef
        extra = _body_values(event) if ref is not None and ref.resource in _BODY_RESOURCES else None
        return owner, action, stamp, extra

    @staticmethod
    def apply(fact: tuple[Any, ...], ctx: DetectionContext) -> None:
        """Learn what :meth:`prepare` read, as :meth:`detect` would have."""
        baselines: Baselines | None = ctx.baselines
        if baselines is None:
            return
        owner, action, stamp, extra = fact
        baselines.memo = None
        baselines.defer_key(owner, action, stamp)
        if extra is not None:
            baselines.learn(Observation(owner[0], owner[1], f.seconds_of(stamp), {}), extra, times=0)


#: Resources whose bodies carry a feature (images, permissions); other events never need decoding.
BODY_RESOURCES = frozenset({*ACCESS_REVIEWS, *workload.WORKLOAD_RESOURCES})
_BODY_RESOURCES = BODY_RESOURCES


def _body_values(event: AuditEvent) -> dict[str, list[str]] | None:
    """Images deployed and permissions checked: the features that live in request or response bodies."""
    ref = event.objectRef
    if ref is None or ref.resource not in _BODY_RESOURCES or event.verb not in WRITES or not event.succeeded:
        return None
    resource = ref.resource
    if resource in ACCESS_REVIEWS:
        checked = checked_permission(event)
        return {f.PERMISSION: [checked[0]]} if checked is not None else None
    view = workload.read_workload(event)
    if view is not None:
        return {f.IMAGE: sorted({image_repository(c.image) for c in view.containers if c.image})}
    return None


def anomaly_detectors() -> list[Any]:
    """The eight types' detectors, then the learner: the order the registry must keep."""
    return [
        SecretsAccessedAnomaly(),
        RoleBindingCreatedAnomaly(),
        ExecInPodAnomaly(),
        WorkloadDeployedAnomaly(),
        RoleCreatedAnomaly(),
        PermissionCheckedAnomaly(),
        AnomalyLearner(),
    ]
