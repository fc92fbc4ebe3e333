"""Policy:Kubernetes/AnonymousAccessGranted — a binding that hands permissions to anonymous callers.

Any subject that is the ``system:anonymous`` user or the ``system:unauthenticated`` group opens the
cluster to whoever can reach its API endpoint. Kubernetes' own bootstrap bindings of its public,
information-only roles are not findings.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.rbac import (
    BINDING_WRITES,
    binding_details,
    binding_key,
    grants_anonymous,
    read_binding,
)

FINDING = "Policy:Kubernetes/AnonymousAccessGranted"
#: Kubernetes' own bootstrap policy binds these to unauthenticated callers on every cluster; they expose
#: only health, version and discovery information.
BUILT_IN_PUBLIC_ROLES = frozenset({"system:public-info-viewer", "system:discovery", "system:basic-user"})
#: The API server reconciles its bootstrap RBAC policy under this identity at every start.
BOOTSTRAP_USER = "system:apiserver"


class AnonymousAccessGranted:
    name = "anonymous-access-granted"
    finding_types = (FINDING,)
    wants = BINDING_WRITES

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        binding = read_binding(event)
        if binding is None or event.user.username == BOOTSTRAP_USER:
            return
        if binding.roleRef is not None and binding.roleRef.name in BUILT_IN_PUBLIC_ROLES:
            return
        granted = [s for s in binding.subjects or () if grants_anonymous(s)]
        if not granted:
            return
        details = binding_details(event, binding)
        yield make_detection(
            FINDING,
            event,
            key=binding_key(event, binding),
            description=(
                f"{who(event)} bound {details['roleRefKind']} {details['roleRefName']} to "
                f"{', '.join(s.name for s in granted)} through {details['kind']} {details['name']} "
                f"on cluster {event.cluster}."
            ),
            role_binding=details,
        )
