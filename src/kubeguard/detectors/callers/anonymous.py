"""<Tactic>:Kubernetes/SuccessfulAnonymousAccess — an unauthenticated call that the cluster carried out.

Only calls that succeeded count: an anonymous request that is denied shows the cluster doing its job.
Health and version probes, and service-account issuer discovery (OIDC), are anonymous by design on most
clusters and never count.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import ANONYMOUS_CALLER, ANONYMOUS_USER, ANY, Detection, DetectionContext, is_anonymous
from kubeguard.detectors.common import api_call, make_detection
from kubeguard.detectors.tactics import classify
from kubeguard.findings.types import TACTICS

VARIANT = "SuccessfulAnonymousAccess"
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
#: Service-account issuer discovery (OIDC): public by design, so that cloud IAM can verify the cluster's
#: tokens; clusters bind ``system:service-account-issuer-discovery`` to unauthenticated callers for it.
PUBLIC_PATHS = frozenset({"/.well-known/openid-configuration", "/openid/v1/jwks"})


def is_health_probe(event: AuditEvent) -> bool:
    path = event.requestURI.split("?", 1)[0].rstrip("/")
    return path in HEALTH_PATHS or path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/"))


class SuccessfulAnonymousAccess:
    name = "successful-anonymous-access"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    only_for = ANONYMOUS_CALLER
    finding_types = tuple(f"{tactic}:Kubernetes/{VARIANT}" for tactic in TACTICS)
    wants = ((ANY, ANY),)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Sequence[Detection]:
        """Runs on every event, so it returns a plain tuple rather than starting a generator."""
        if not is_anonymous(event) or not event.succeeded or is_health_probe(event):
            return ()
        tactic = classify(event)
        if tactic is None:
            return ()
        ip = event.caller_ip
        return (make_detection(
            f"{tactic}:Kubernetes/{VARIANT}",
            event,
            key=ip,
            description=(
                f"Kubernetes API {api_call(event)} was invoked successfully by the unauthenticated user "
                f"{event.user.username or ANONYMOUS_USER} from IP {ip or 'unknown'} on cluster {event.cluster}."
            ),
            remote_ip=ip,
        ),)
