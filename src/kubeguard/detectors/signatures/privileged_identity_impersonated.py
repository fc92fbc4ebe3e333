"""PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated (kubeguard extension).

Impersonation (``kubectl --as``) lets a caller act as someone else. Checking what a colleague may do
(``--as alice``, or ``kubectl auth can-i --as`` any identity: an access review acts as nobody) is
routine; acting as ``system:masters``, a node, the controller manager or a
kube-system service account is how a holder of the ``impersonate`` verb turns it into full control, and
the audit log then shows the target's name on every later call. Impersonation by the cluster's own
components (and by access proxies running as service accounts, whose impersonation is their job) is
not reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import ANY, IMPERSONATING_CALLER, Detection, DetectionContext
from kubeguard.detectors.common import api_call, make_detection
from kubeguard.detectors.identities import is_privileged_identity, is_system_user

FINDING = "PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated"
#: Asking what an identity may do reads its permissions; it does nothing as that identity.
ACCESS_REVIEWS = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})


class PrivilegedIdentityImpersonated:
    name = "privileged-identity-impersonated"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    only_for = IMPERSONATING_CALLER
    finding_types = (FINDING,)
    wants = ((ANY, ANY),)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Sequence[Detection]:
        """Runs on every event, so it returns a plain tuple rather than starting a generator."""
        target = event.impersonatedUser
        if target is None or is_system_user(event.user.username) or event.resource in ACCESS_REVIEWS:
            return ()
        if not is_privileged_identity(target.username, target.groups):
            return ()
        return (make_detection(
            FINDING,
            event,
            key=target.username or ",".join(target.groups),
            description=(
                f"{event.user.username} impersonated {target.username or 'a user'}"
                f"{' in groups ' + ', '.join(target.groups) if target.groups else ''} to call "
                f"{api_call(event)} on cluster {event.cluster}. Acting as an administrator, node or "
                f"control-plane identity gives the caller that identity's rights and hides who acted."
            ),
        ),)
