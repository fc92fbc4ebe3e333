"""The tactic classifier, row by row of DESIGN.md's table ("Tactic of an API call"); first match wins."""

from __future__ import annotations

import pytest

from kubeguard.detectors.tactics import Tactic, classify

C, E, P, I, D = (  # noqa: E741
    Tactic.CREDENTIAL_ACCESS, Tactic.DEFENSE_EVASION, Tactic.PERSISTENCE, Tactic.IMPACT,
                 Tactic.DISCOVERY)
TOKEN_SECRET = {"kind": "Secret", "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "t", "annotations": {"kubernetes.io/service-account.name": "default"}}}
OPAQUE_SECRET = {"kind": "Secret", "type": "Opaque", "metadata": {"name": "s"}}


def _event(make_event, verb, resource="", *, sub="", name="", uri="", impersonate=False, body=None):
    record = {"auditID": "a", "stage": "ResponseComplete", "verb": verb,
              "requestURI": uri or f"/api/v1/{resource}", "user": {"username": "u"}}
    if resource:
        record["objectRef"] = {"resource": resource, "subresource": sub, "name": name, "namespace": "ns"}
    if impersonate:
        record["impersonatedUser"] = {"username": "alice"}
    if body is not None:
        record["requestObject"] = body
    return make_event(record)


TABLE = [
    # 1. CredentialAccess
    ("get", "secrets", {}, C), ("list", "secrets", {}, C), ("watch", "secrets", {}, C),
    ("create", "serviceaccounts", {"sub": "token"}, C),
    ("create", "certificatesigningrequests", {}, C),
    ("get", "configmaps", {"name": "aws-auth"}, C),
    ("get", "secrets", {"impersonate": True}, C),  # row 1 is before the impersonation rule
    # 2. DefenseEvasion
    ("delete", "events", {}, E), ("deletecollection", "events", {}, E),
    ("create", "pods", {"impersonate": True}, E), ("list", "pods", {"impersonate": True}, E),
    ("create", "selfsubjectrulesreviews", {"impersonate": True}, E),
    *[(verb, resource, {}, E) for verb in ("update", "patch", "delete")
      for resource in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations", "networkpolicies")],
    # 3. Persistence
    *[(verb, resource, {}, P) for verb in ("create", "update", "patch")
      for resource in ("clusterrolebindings", "rolebindings", "clusterroles", "roles", "cronjobs", "daemonsets")],
    ("create", "mutatingwebhookconfigurations", {}, P),
    ("create", "secrets", {"body": TOKEN_SECRET}, P),
    # 4. Impact: every other mutating verb
    ("create", "secrets", {"body": OPAQUE_SECRET}, I),
    ("create", "serviceaccounts", {}, I),  # the GuardDuty tester's "Create Service Role" is Impact
    ("create", "pods", {}, I), ("delete", "pods", {}, I), ("patch", "deployments", {}, I),
    ("deletecollection", "configmaps", {}, I), ("update", "namespaces", {}, I),
    ("delete", "clusterrolebindings", {}, I), ("delete", "daemonsets", {}, I),
    ("create", "validatingwebhookconfigurations", {}, I), ("create", "networkpolicies", {}, I),
    ("get", "configmaps", {"name": "other"}, D),
    # 5. Discovery
    ("get", "pods", {}, D), ("list", "namespaces", {}, D), ("watch", "deployments", {}, D),
    ("get", "serviceaccounts", {"sub": "token"}, D), ("get", "pods", {"sub": "log"}, D),
    ("get", "", {"uri": "/api"}, D), ("get", "", {"uri": "/apis"}, D),
    ("get", "", {"uri": "/openapi/v2"}, D), ("get", "", {"uri": "/openapi/v3/apis/apps/v1"}, D),
    ("get", "", {"uri": "/version"}, D),
    ("create", "selfsubjectaccessreviews", {}, D), ("create", "selfsubjectrulesreviews", {}, D),
]


@pytest.mark.parametrize(("verb", "resource", "extra", "tactic"), TABLE,
                         ids=[f"{v}-{r or x.get('uri')}-{t}-{i}" for i, (v, r, x, t) in enumerate(TABLE)])
def test_tactic_of_api_call(make_event, verb, resource, extra, tactic):
    assert classify(_event(make_event, verb, resource, **extra)) is tactic


@pytest.mark.parametrize("verb", ["post", "put", "", "proxy"])
def test_calls_that_serve_no_tactic(make_event, verb):
    assert classify(_event(make_event, verb, "", uri="/logs")) is None
