"""PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated (kubeguard extension, audit-trail pack).

A ClusterRole that grants ``*`` verbs or resources, write verbs, ``pods/exec``, or the ``escalate``,
``bind`` and ``impersonate`` verbs (which let a holder grant themselves more) widens what can be done
everywhere in the cluster. Operators and Helm charts create such roles routinely, so this is an audit
trail of who did, not an alert: it ships in the opt-in audit-trail pack. Roles the control plane writes
(bootstrap policy, aggregation) are not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import PolicyRule
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who
from kubeguard.detectors.effect import patch_touches
from kubeguard.detectors.identities import made_by_system
from kubeguard.detectors.rbac import read_role

FINDING = "PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
ESCALATING_VERBS = frozenset({"escalate", "bind", "impersonate"})


def permissive_grants(rules: list[PolicyRule]) -> list[str]:
    """What makes the rules permissive, in words, in a stable order."""
    found: set[str] = set()
    for rule in rules:
        verbs = set(rule.verbs)
        if "*" in verbs or "*" in rule.resources:
            found.add("wildcard")
        if verbs & ESCALATING_VERBS:
            found.update(sorted(verbs & ESCALATING_VERBS))
        if verbs & WRITE_VERBS:
            found.add("write")
        if "pods/exec" in rule.resources and verbs & {"create", "get", "*"}:
            found.add("pods/exec")
    return sorted(found)


class PermissiveClusterRoleCreated:
    name = "permissive-cluster-role-created"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = tuple((verb, "clusterroles") for verb in ("create", "update", "patch"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if made_by_system(event) or not patch_touches(event, ("rules",)):
            return
        role = read_role(event)
        if role is None:
            return
        grants = permissive_grants(role.rules or [])
        if not grants:
            return
        name = role.metadata.name or event.name
        yield make_detection(
            FINDING,
            event,
            key=f"clusterroles/{name}",
            description=(
                f"{who(event)} {'created' if event.verb == 'create' else 'changed'} ClusterRole {name} on "
                f"cluster {event.cluster} granting {', '.join(grants)} permissions cluster-wide."
            ),
            role={"kind": "ClusterRole", "name": name, "uid": role.metadata.uid},
            parameters=", ".join(grants),
        )
