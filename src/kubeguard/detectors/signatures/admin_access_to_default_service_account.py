"""Policy:Kubernetes/AdminAccessToDefaultServiceAccount — admin rights for a default service account.

Every pod that names no service account runs as its namespace's ``default`` one, so admin rights there
are admin rights for any workload an attacker can start in that namespace. Group subjects that contain
default service accounts (``system:serviceaccounts[:ns]``) count too.
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
    is_admin_role_ref,
    is_default_service_account,
    read_binding,
)

FINDING = "Policy:Kubernetes/AdminAccessToDefaultServiceAccount"


class AdminAccessToDefaultServiceAccount:
    name = "admin-access-to-default-service-account"
    finding_types = (FINDING,)
    wants = BINDING_WRITES

    @staticmethod
    def relevant(event: AuditEvent) -> bool:
        """False when :meth:`detect` would find nothing: no default service account among the subjects."""
        binding = read_binding(event)
        if binding is None:
            return False
        namespace = binding.metadata.namespace or event.namespace
        return any(is_default_service_account(s, namespace) for s in binding.subjects or ())

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        binding = read_binding(event)
        if binding is None or not is_admin_role_ref(event, binding, ctx.state):
            return
        namespace = binding.metadata.namespace or event.namespace
        defaults = [s for s in binding.subjects or () if is_default_service_account(s, namespace)]
        if not defaults:
            return
        details = binding_details(event, binding)
        names = ", ".join(
            f"{s.namespace or namespace}/{s.name}" if s.kind == "ServiceAccount" else s.name for s in defaults
        )
        yield make_detection(
            FINDING,
            event,
            key=binding_key(event, binding),
            description=(
                f"{who(event)} granted {details['roleRefKind']} {details['roleRefName']} to the default "
                f"service account {names} through {details['kind']} {details['name']} on cluster {event.cluster}."
            ),
            role_binding=details,
        )
