"""CredentialAccess:Kubernetes/CertificateSigningRequestApprovedByUser (kubeguard extension).

A client certificate signed by the cluster's CA is a credential that cannot be revoked until it expires,
for whatever user and groups the request names (``system:masters`` included). Kubelet certificates
are approved by the controller manager; a person approving a request (``kubectl certificate approve``)
is rare, and the classic way to mint a durable backdoor identity.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import read_object
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.identities import made_by_system

FINDING = "CredentialAccess:Kubernetes/CertificateSigningRequestApprovedByUser"


class _Condition(msgspec.Struct, omit_defaults=True):
    type: str = ""
    status: str = "True"


class _Status(msgspec.Struct, omit_defaults=True):
    conditions: list[_Condition] = []


class _Spec(msgspec.Struct, omit_defaults=True):
    signerName: str = ""
    username: str = ""


class CertificateSigningRequest(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    spec: _Spec | None = None
    status: _Status | None = None


def is_approved(csr: CertificateSigningRequest) -> bool:
    conditions = csr.status.conditions if csr.status is not None else []
    return any(c.type == "Approved" and c.status == "True" for c in conditions)


class CertificateSigningRequestApprovedByUser:
    name = "certificate-signing-request-approved-by-user"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = (("update", "certificatesigningrequests/approval"), ("patch", "certificatesigningrequests/approval"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if made_by_system(event):
            return
        csr = read_object(event, CertificateSigningRequest, lambda c: c.status is not None)
        if csr is not None and not is_approved(csr):
            return  # a denial
        spec = csr.spec if csr is not None and csr.spec is not None else _Spec()
        requester = f" requested by {spec.username}" if spec.username else ""
        signer = f" for signer {spec.signerName}" if spec.signerName else ""
        yield make_detection(
            FINDING,
            event,
            key=f"certificatesigningrequests/{event.name}",
            description=(
                f"{who(event)} approved the certificate signing request {event.name}{requester}{signer} on "
                f"cluster {event.cluster}. The signed certificate authenticates as whoever the request names "
                f"until it expires and cannot be revoked."
            ),
        )
