"""Detectors that raise nothing and remember facts other detectors need.

* Which (Cluster)Roles grant ``*`` verbs on ``*`` resources, so that binding one counts as admin.
* Which clusters run Kubeflow, so that their Istio ingress gateway counts as its dashboard's front door.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import ANY, Detection, DetectionContext
from kubeguard.detectors.rbac import ROLE_RESOURCES, WILDCARD_ROLES, is_wildcard_role, read_role, role_key
from kubeguard.detectors.signatures.exposed_dashboard import KUBEFLOW_CLUSTERS


class WildcardRoleTracker:
    name = "wildcard-role-tracker"
    finding_types = ()
    wants = tuple((v, r) for v in ("create", "update", "patch", "delete") for r in ROLE_RESOURCES)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        fact = self.prepare(event)
        if fact is not None:
            self.apply(fact, ctx)
        return ()

    @staticmethod
    def prepare(event: AuditEvent) -> tuple[str, bool] | None:
        """What the event tells, read from the event alone: (role key, grants ``*`` on ``*``), or None.

        A split scan (``kubeguard.split_scan``) prepares in the decoding process and applies in order.
        """
        if not event.succeeded:
            return None
        kind = "ClusterRole" if event.resource == "clusterroles" else "Role"
        role = read_role(event) if event.verb != "delete" else None
        name = (role.metadata.name if role is not None else "") or event.name
        namespace = (role.metadata.namespace if role is not None else "") or event.namespace
        return role_key(event.cluster, kind, namespace, name), role is not None and is_wildcard_role(role)

    @staticmethod
    def apply(fact: tuple[str, bool], ctx: DetectionContext) -> None:
        """Record what :meth:`prepare` read."""
        key, wildcard = fact
        if wildcard:
            ctx.state.first_seen(WILDCARD_ROLES, key)
        else:
            ctx.state.forget(WILDCARD_ROLES, key)


class KubeflowTracker:
    name = "kubeflow-tracker"
    finding_types = ()
    wants = ((ANY, "namespaces"), ("create", "services"), ("create", "deployments"))

    @staticmethod
    def relevant(event: AuditEvent) -> bool:
        """False when :meth:`detect` would record nothing (a split scan skips the event)."""
        return event.namespace == "kubeflow" or (event.resource == "namespaces" and event.name == "kubeflow")

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]:
        if event.namespace == "kubeflow" or (event.resource == "namespaces" and event.name == "kubeflow"):
            ctx.state.first_seen(KUBEFLOW_CLUSTERS, event.cluster)
        return ()
