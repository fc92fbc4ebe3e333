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
from kubeguard.detectors.effect import is_bootstrap_change, patch_touches
from kubeguard.detectors.rbac import (
    BINDING_WRITES,
    binding_details,
    binding_key,
    grants_anonymous,
    read_binding,
    subjects_added_by_request,
)

FINDING = "Policy:Kubernetes/AnonymousAccessGranted"


class AnonymousAccessGranted:
    name = "anonymous-access-granted"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = BINDING_WRITES

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if is_bootstrap_change(event):
            return
        binding = read_binding(event)
        if binding is None:
            yield from self._from_request(event)
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

    def _from_request(self, event: AuditEvent) -> Iterator[Detection]:
        """The grant when the log kept only the request (a patch fragment, no response body)."""
        if not patch_touches(event, ("subjects",)):
            return
        granted = [s for s in subjects_added_by_request(event) if grants_anonymous(s)]
        if not granted:
            return
        kind = "ClusterRoleBinding" if event.resource == "clusterrolebindings" else "RoleBinding"
        yield make_detection(
            FINDING,
            event,
            key=f"{event.resource}/{event.namespace}/{event.name}",
            description=(
                f"{who(event)} added {', '.join(s.name for s in granted)} to {kind} {event.name} on cluster "
                f"{event.cluster} (the log keeps no response body, so the role it grants is not shown)."
            ),
            role_binding={"kind": kind, "name": event.name},
        )
