"""Persistence:Kubernetes/AdmissionWebhookConfigured (kubeguard extension, audit-trail pack).

A mutating webhook sees, and may rewrite, every object it matches (inject a container into every new
pod); a validating one can block them, or be pointed away to switch a policy engine off. Installing a
policy engine or cert-manager creates them too, so this is an audit trail (opt-in pack). Changes made
by the cluster's components and service accounts (cert-manager's CA injector patching ``caBundle``) are
not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.identities import made_by_system

FINDING = "Persistence:Kubernetes/AdmissionWebhookConfigured"
RESOURCES = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")


class AdmissionWebhookConfigured:
    name = "admission-webhook-configured"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = tuple((verb, r) for verb in ("create", "update", "patch", "delete") for r in RESOURCES)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if made_by_system(event):
            return
        kind = "mutating" if event.resource.startswith("mutating") else "validating"
        done = {"create": "created", "delete": "deleted"}.get(event.verb, "changed")
        yield make_detection(
            FINDING,
            event,
            key=f"{event.resource}/{event.name}",
            description=(
                f"{who(event)} {done} the {kind} admission webhook configuration {event.name or '<unnamed>'} "
                f"on cluster {event.cluster}."
            ),
        )
