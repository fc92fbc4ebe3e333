"""CredentialAccess:Kubernetes/SystemServiceAccountTokenRequested (kubeguard extension).

kube-system's service accounts belong to the control plane's add-ons and controllers, and many hold
cluster-wide rights. A person minting a token for one (``kubectl create token -n kube-system ...``, or a
long-lived ``service-account-token`` Secret) walks away with those rights in a bearer token that
outlives their own session. Kubelets and controllers requesting tokens for pods is the cluster working.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Secret, read_object
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.identities import made_by_system
from kubeguard.detectors.tactics import SERVICE_ACCOUNT_TOKEN_SECRET

FINDING = "CredentialAccess:Kubernetes/SystemServiceAccountTokenRequested"
SYSTEM_NAMESPACE = "kube-system"
_ACCOUNT_ANNOTATION = "kubernetes.io/service-account.name"


class SystemServiceAccountTokenRequested:
    name = "system-service-account-token-requested"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = (("create", "serviceaccounts/token"), ("create", "secrets"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if event.namespace != SYSTEM_NAMESPACE or made_by_system(event):
            return
        if event.subresource == "token":
            account, how = event.name, "requested a token for"
        else:
            secret = read_object(event, Secret, lambda s: s.type == SERVICE_ACCOUNT_TOKEN_SECRET)
            if secret is None:
                return
            account = secret.metadata.annotations.get(_ACCOUNT_ANNOTATION, "")
            how = f"created the long-lived token Secret {secret.metadata.name or event.name} for"
        yield make_detection(
            FINDING,
            event,
            key=f"{SYSTEM_NAMESPACE}/{account}",
            description=(
                f"{who(event)} {how} the service account {SYSTEM_NAMESPACE}/{account or '<unnamed>'} on cluster "
                f"{event.cluster}. kube-system accounts carry the control plane's rights; a token for one is "
                f"a credential for them."
            ),
            parameters=account,
        )
