"""Reading RBAC objects out of audit events: who a binding grants, and whether a role is admin."""

from __future__ import annotations

from typing import Any

import msgspec

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Role, RoleBinding, Subject, decode_body, read_object
from kubeguard.detectors.base import ANONYMOUS_USER, UNAUTHENTICATED_GROUP, StateStore
from kubeguard.detectors.effect import patch_touches

BINDING_RESOURCES = ("rolebindings", "clusterrolebindings")
#: What a binding detector declares it wants: every create, update or patch of a (Cluster)RoleBinding.
BINDING_WRITES = tuple((verb, resource) for verb in ("create", "update", "patch") for resource in BINDING_RESOURCES)
ROLE_RESOURCES = ("roles", "clusterroles")
ADMIN_CLUSTER_ROLES = frozenset({"cluster-admin", "admin"})
#: State scope of the (Cluster)Roles seen granting ``*`` verbs on ``*`` resources.
WILDCARD_ROLES = "rbac.wildcard-roles"


def read_binding(event: AuditEvent) -> RoleBinding | None:
    """The binding a successful write produced (response preferred: a patch request is a fragment).

    A patch that changes neither who is bound nor to what (a label, an annotation) grants nothing new.
    """
    if not event.succeeded or not patch_touches(event, ("subjects",), ("roleRef",)):
        return None
    return read_object(event, RoleBinding, lambda binding: binding.roleRef is not None)


class _SubjectsFragment(msgspec.Struct, omit_defaults=True):
    subjects: list[Subject] | None = None


class _PatchOperation(msgspec.Struct, omit_defaults=True):
    op: str = ""
    path: str = ""
    value: msgspec.Raw = msgspec.Raw(b"")


def subjects_added_by_request(event: AuditEvent) -> list[Subject]:
    """Subjects a binding write names in its request alone, for logs that keep no response body.

    A merge or strategic-merge patch carries ``subjects``; a JSON patch adds them one by one
    (``/subjects/-``) or whole (``/subjects``). The role is unknown then, which is enough for the grants
    where the role does not matter (anything bound to anonymous callers).
    """
    if not event.succeeded or event.verb not in ("create", "update", "patch"):
        return []
    raw = bytes(event.requestObject)
    if raw.lstrip().startswith(b"["):
        found: list[Subject] = []
        for op in decode_body(raw, list[_PatchOperation]) or []:
            if op.op in ("add", "replace") and op.path.startswith("/subjects"):
                value = bytes(op.value)
                many = value.lstrip().startswith(b"[")
                decoded = decode_body(value, list[Subject] if many else Subject)
                found.extend(decoded if many else [decoded] if decoded is not None else [])
        return found
    fragment = decode_body(raw, _SubjectsFragment)
    return list(fragment.subjects or []) if fragment is not None else []


def read_role(event: AuditEvent) -> Role | None:
    return read_object(event, Role, lambda role: role.rules is not None)


def role_key(cluster: str, kind: str, namespace: str, name: str) -> str:
    scope = "" if kind == "ClusterRole" else namespace
    return f"{cluster}/{kind}/{scope}/{name}"


def is_wildcard_role(role: Role) -> bool:
    return any("*" in rule.verbs and "*" in rule.resources for rule in role.rules or ())


def is_admin_role_ref(event: AuditEvent, binding: RoleBinding, state: StateStore) -> bool:
    """cluster-admin, admin, or a (Cluster)Role this cluster was seen to grant ``*`` on ``*``."""
    ref = binding.roleRef
    if ref is None:
        return False
    if ref.kind == "ClusterRole" and ref.name in ADMIN_CLUSTER_ROLES:
        return True
    namespace = binding.metadata.namespace or event.namespace
    key = role_key(event.cluster, ref.kind, namespace, ref.name)
    return state.seen(WILDCARD_ROLES, key)


#: Groups every default service account belongs to (all authenticated callers include them).
_GROUPS_WITH_DEFAULT_ACCOUNTS = ("system:serviceaccounts", "system:authenticated")


def is_default_service_account(subject: Subject, binding_namespace: str) -> bool:
    """A subject that is, or contains, a namespace's ``default`` service account.

    A service account can be named as a ``ServiceAccount`` subject, as a ``User`` subject by its user
    name (``system:serviceaccount:<ns>:default``), or through the groups every service account is in.
    """
    if subject.kind == "ServiceAccount":
        return subject.name == "default"
    if subject.kind == "User":
        return subject.name.startswith("system:serviceaccount:") and subject.name.endswith(":default")
    if subject.kind == "Group":
        return subject.name in _GROUPS_WITH_DEFAULT_ACCOUNTS or subject.name.startswith("system:serviceaccounts:")
    return False


def grants_anonymous(subject: Subject) -> bool:
    return (subject.kind == "User" and subject.name == ANONYMOUS_USER) or (
        subject.kind == "Group" and subject.name in (UNAUTHENTICATED_GROUP, ANONYMOUS_USER)
    )


def binding_details(event: AuditEvent, binding: RoleBinding) -> dict[str, Any]:
    """GuardDuty's ``kubernetesRoleBindingDetails``."""
    ref = binding.roleRef
    return {
        "kind": binding.kind or ("ClusterRoleBinding" if event.resource == "clusterrolebindings" else "RoleBinding"),
        "name": binding.metadata.name or event.name,
        "uid": binding.metadata.uid,
        "roleRefName": ref.name if ref else "",
        "roleRefKind": ref.kind if ref else "",
    }


def binding_key(event: AuditEvent, binding: RoleBinding) -> str:
    return f"{event.resource}/{binding.metadata.namespace or event.namespace}/{binding.metadata.name or event.name}"
