"""Persistence:Kubernetes/SystemClusterRoleModified (kubeguard extension).

The API server reconciles Kubernetes' own ClusterRoles and ClusterRoleBindings (``system:*``, labelled
``kubernetes.io/bootstrapping: rbac-defaults``) at start. A person editing one widens what a system
component (or everyone: ``system:basic-user``, ``system:discovery``) may do, in a place nobody reviews;
deleting one breaks a component or hides a change. Roles that add-ons install under a ``system:`` name
(``system:metrics-server``) are not Kubernetes' own: an edit is reported only when the object carries
the bootstrap label, or, when the log has no body (a delete, a ``Metadata``-level policy), by name.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Role, read_object
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.identities import made_by_system

FINDING = "Persistence:Kubernetes/SystemClusterRoleModified"
RESOURCES = ("clusterroles", "clusterrolebindings")
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")


def is_bootstrap_object(event: AuditEvent) -> bool:
    if not event.name.startswith("system:"):
        return False
    obj = read_object(event, Role, lambda o: bool(o.metadata.name))
    if obj is None:
        return True
    key, value = BOOTSTRAP_LABEL
    return obj.metadata.labels.get(key) == value


class SystemClusterRoleModified:
    name = "system-cluster-role-modified"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = tuple((verb, r) for verb in ("update", "patch", "delete") for r in RESOURCES)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if made_by_system(event) or not is_bootstrap_object(event):
            return
        kind = "ClusterRole" if event.resource == "clusterroles" else "ClusterRoleBinding"
        done = {"delete": "deleted"}.get(event.verb, "modified")
        yield make_detection(
            FINDING,
            event,
            key=f"{event.resource}/{event.name}",
            description=(
                f"{who(event)} {done} the Kubernetes system {kind} {event.name} on cluster {event.cluster}. "
                f"System roles are reconciled by the API server and used by every cluster component; changing "
                f"them changes what those components (or all users) may do."
            ),
        )
