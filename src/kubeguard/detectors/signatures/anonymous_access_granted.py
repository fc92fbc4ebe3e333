"""Policy:Kubernetes/AnonymousAccessGranted — a binding that hands permissions to anonymous callers.

Any subject that is the ``system:anonymous`` user or the ``system:unauthenticated`` group opens the
cluster to whoever can reach its API endpoint. Kubernetes' own bootstrap bindings (``system:public-info-
viewer`` and friends, reconciled by the API server at every start) are not findings; that is decided by
who made the change (``effect.is_bootstrap_change``), not by the role's name: anyone else binding
``system:discovery`` or ``system:basic-user`` to anonymous callers is granting anonymous access.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.effect import is_bootstrap_change
from kubeguard.detectors.rbac import (
    BINDING_WRITES,
    binding_details,
    binding_key,
    grants_anonymous,
    read_binding,
)

FINDING = "Policy:Kubernetes/AnonymousAccessGranted"


class AnonymousAccessGranted:
    name = "anonymous-access-granted"
    finding_types = (FINDING,)
    wants = BINDING_WRITES

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        binding = read_binding(event)
        if binding is None or is_bootstrap_change(event):
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
