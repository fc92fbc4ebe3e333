"""PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound (kubeguard extension, audit-trail pack).

``cluster-admin`` is every permission on every object. Granting it to a colleague is ordinary for an
administrator, so this is an audit trail (opt-in pack); the grants that are attacks by themselves, to
anonymous callers or to default service accounts, are GuardDuty's AnonymousAccessGranted and
AdminAccessToDefaultServiceAccount and are on by default.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.effect import is_bootstrap_change
from kubeguard.detectors.rbac import BINDING_WRITES, binding_details, binding_key, read_binding

FINDING = "PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound"
CLUSTER_ADMIN = "cluster-admin"


class ClusterAdminRoleBound:
    name = "cluster-admin-role-bound"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = BINDING_WRITES

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if is_bootstrap_change(event):
            return
        binding = read_binding(event)
        if binding is None or binding.roleRef is None:
            return
        if (binding.roleRef.kind, binding.roleRef.name) != ("ClusterRole", CLUSTER_ADMIN):
            return
        details = binding_details(event, binding)
        subjects = ", ".join(f"{s.kind} {s.name}" for s in binding.subjects or ()) or "no subjects"
        yield make_detection(
            FINDING,
            event,
            key=binding_key(event, binding),
            description=(
                f"{who(event)} bound ClusterRole cluster-admin to {subjects} through {details['kind']} "
                f"{details['name']} on cluster {event.cluster}."
            ),
            role_binding=details,
        )
