"""Who made a change: the cluster's own components, or a person (or a person's automation).

Several kubeguard detections report what *people* do to the parts of a cluster that Kubernetes itself
manages (system roles, kube-system, certificates): the control plane, nodes and service accounts doing
the same is the cluster running. Who counts is decided here, once.
"""

from __future__ import annotations

from kubeguard.audit.event import AuditEvent

ANONYMOUS_USER = "system:anonymous"
#: Identities Kubernetes and the managed-cluster providers give their own components.
SYSTEM_PREFIXES = ("system:", "eks:")
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public"})
MASTERS_GROUP = "system:masters"


def is_system_user(username: str) -> bool:
    """Control plane, nodes, service accounts and provider components; never the anonymous user."""
    return username.startswith(SYSTEM_PREFIXES) and username != ANONYMOUS_USER


def made_by_system(event: AuditEvent) -> bool:
    """The change was made by the cluster's own components, in their own name."""
    if not is_system_user(event.user.username):
        return False
    impersonated = event.impersonatedUser
    return impersonated is None or is_system_user(impersonated.username)


def is_privileged_identity(username: str, groups: list[str]) -> bool:
    """An identity whose rights are the cluster's: administrators, nodes, control plane, kube-system."""
    if MASTERS_GROUP in groups or "system:nodes" in groups:
        return True
    if username.startswith(("system:node:", "system:serviceaccount:kube-system:")):
        return True
    return username in {"system:admin", "kubernetes-admin", "system:kube-controller-manager",
                        "system:kube-scheduler", "system:apiserver", "system:kube-proxy"}
