"""Which MITRE tactic an API call serves, for the caller-family findings.

GuardDuty names its caller findings ``<Tactic>:Kubernetes/<Variant>`` but does not say which calls
belong to which tactic. kubeguard's table (DESIGN.md, "Tactic of an API call") is evaluated in order;
the first rule that matches wins. Every row is here in one place so it can be read and tested as a table.
"""

from __future__ import annotations

from enum import StrEnum

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import Secret, decode_body

READ_VERBS = frozenset({"get", "list", "watch"})
MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

_WEBHOOKS = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations"})
_EVASION_TARGETS = _WEBHOOKS | {"networkpolicies"}
_PERSISTENCE_TARGETS = frozenset(
    {
        "clusterrolebindings", "rolebindings", "clusterroles", "roles", "cronjobs", "daemonsets",
        "mutatingwebhookconfigurations",
    }
)
_ACCESS_REVIEWS = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})
SERVICE_ACCOUNT_TOKEN_SECRET = "kubernetes.io/service-account-token"  # noqa: S105 (a type name)


class Tactic(StrEnum):
    CREDENTIAL_ACCESS = "CredentialAccess"
    DEFENSE_EVASION = "DefenseEvasion"
    PERSISTENCE = "Persistence"
    IMPACT = "Impact"
    DISCOVERY = "Discovery"


def _creates_token_secret(event: AuditEvent) -> bool:
    secret = decode_body(event.requestObject, Secret) or decode_body(event.responseObject, Secret)
    return secret is not None and secret.type == SERVICE_ACCOUNT_TOKEN_SECRET


def classify(event: AuditEvent) -> Tactic | None:
    """The tactic of a call, or None for calls that serve none (e.g. a health probe)."""
    verb = event.verb
    resource = event.resource
    sub = event.subresource
    if resource == "secrets" and not sub and verb in READ_VERBS:
        return Tactic.CREDENTIAL_ACCESS
    if verb == "create" and (
        (resource == "serviceaccounts" and sub == "token") or resource == "certificatesigningrequests"
    ):
        return Tactic.CREDENTIAL_ACCESS
    if verb == "get" and resource == "configmaps" and event.name == "aws-auth":
        return Tactic.CREDENTIAL_ACCESS
    if resource == "events" and verb in ("delete", "deletecollection"):
        return Tactic.DEFENSE_EVASION
    if event.impersonatedUser is not None:
        return Tactic.DEFENSE_EVASION
    if resource in _EVASION_TARGETS and verb in ("update", "patch", "delete"):
        return Tactic.DEFENSE_EVASION
    if resource in _PERSISTENCE_TARGETS and not sub and verb in ("create", "update", "patch"):
        return Tactic.PERSISTENCE
    if resource == "secrets" and verb == "create" and _creates_token_secret(event):
        return Tactic.PERSISTENCE
    if resource in _ACCESS_REVIEWS and verb == "create":
        return Tactic.DISCOVERY
    if verb in MUTATING_VERBS:
        return Tactic.IMPACT
    if verb in READ_VERBS:
        # Resource reads, and non-resource reads: /api, /apis, /openapi/*, /version and the like.
        return Tactic.DISCOVERY
    return None
