"""Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace (kubeguard extension, audit-trail pack).

A service account in kube-system looks like one of the control plane's own, so rights bound to it and
tokens for it draw less attention. Installing an add-on creates one too, so this is an audit trail
(opt-in pack); the cluster's own components are not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import ObjectMeta, read_object
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.identities import SYSTEM_NAMESPACES, made_by_system

FINDING = "Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace"


class _Object(msgspec.Struct, omit_defaults=True):
    """Any object, as far as its name goes."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class ServiceAccountCreatedInSystemNamespace:
    name = "service-account-created-in-system-namespace"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = (("create", "serviceaccounts"),)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if event.namespace not in SYSTEM_NAMESPACES or made_by_system(event):
            return
        name = event.name
        if not name:
            named = read_object(event, _Object, lambda o: bool(o.metadata.name))
            name = named.metadata.name if named is not None else ""
        yield make_detection(
            FINDING,
            event,
            key=f"serviceaccounts/{event.namespace}/{name}",
            description=(
                f"{who(event)} created service account {event.namespace}/{name or '<unnamed>'} in a system "
                f"namespace on cluster {event.cluster}."
            ),
        )

