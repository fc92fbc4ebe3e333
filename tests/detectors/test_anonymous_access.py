"""<Tactic>:Kubernetes/SuccessfulAnonymousAccess: an unauthenticated call that the cluster carried out."""

from __future__ import annotations

import pytest

from kubeguard.detectors.callers.anonymous import SuccessfulAnonymousAccess


def _anonymous(lab_records, verb, uri, code):
    [record] = [
        r for r in lab_records
        if r["user"].get("username") == "system:anonymous" and r["verb"] == verb
        and r["requestURI"] == uri and r.get("responseStatus", {}).get("code") == code
    ]
    return record


def _call(verb, uri, *, resource="", name="", namespace="", subresource="", code=200, user="system:anonymous",
          groups=("system:unauthenticated",), ip="198.51.100.23", body=None):
    record = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"{verb}-{uri}-{code}-{user}",
        "stage": "ResponseComplete", "verb": verb, "requestURI": uri,
        "user": {"username": user, "groups": list(groups)}, "sourceIPs": [ip], "userAgent": "curl/8.5.0",
        "responseStatus": {"code": code}, "stageTimestamp": "2024-05-14T09:31:07.412345Z",
    }
    if resource:
        record["objectRef"] = {"resource": resource, "name": name, "namespace": namespace,
                               "subresource": subresource, "apiVersion": "v1"}
    if body is not None:
        record["requestObject"] = body
    return record


def test_anonymous_curl_listing_secrets_in_two_namespaces_is_one_credential_access_finding(lab_records, run):
    records = [
        _anonymous(lab_records, "list", "/api/v1/namespaces/default/secrets", 200),
        _anonymous(lab_records, "list", "/api/v1/namespaces/prod/secrets", 200),
    ]
    [finding] = run([SuccessfulAnonymousAccess()], records)
    assert finding["type"] == "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess"
    assert finding["severity"] == 8.0
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "system:anonymous"
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert call["remoteIpDetails"] == {"ipAddressV4": "127.0.0.1"}
    assert call["sourceIPs"] == ["127.0.0.1"]
    assert (call["verb"], call["resource"], call["namespace"]) == ("list", "secrets", "default")
    assert finding["service"]["count"] == 2
    assert finding["service"]["eventFirstSeen"] <= finding["service"]["eventLastSeen"]
    assert finding["service"]["eventFirstSeen"] != finding["service"]["eventLastSeen"]


def test_anonymous_configmap_create_is_impact(lab_records, run):
    [finding] = run([SuccessfulAnonymousAccess()],
                    [_anonymous(lab_records, "create", "/api/v1/namespaces/default/configmaps", 201)])
    assert finding["type"] == "Impact:Kubernetes/SuccessfulAnonymousAccess"
    assert finding["service"]["action"]["kubernetesApiCallAction"]["statusCode"] == 201


def test_denied_anonymous_requests_raise_nothing(lab_records, run):
    denied = [r for r in lab_records if r["user"].get("username") == "system:anonymous"
              and r.get("responseStatus", {}).get("code") == 403]
    assert len(denied) >= 2
    assert run([SuccessfulAnonymousAccess()], denied) == []


@pytest.mark.parametrize("uri", ["/healthz", "/livez", "/readyz", "/version", "/readyz/etcd", "/livez?verbose",
                                 "/healthz/"])
def test_anonymous_health_probes_raise_nothing(run, uri):
    assert run([SuccessfulAnonymousAccess()], [_call("get", uri)]) == []


@pytest.mark.parametrize(
    ("record", "tactic", "severity"),
    [
        (_call("get", "/api"), "Discovery", 5.0),
        (_call("list", "/api/v1/pods", resource="pods"), "Discovery", 5.0),
        (_call("get", "/api/v1/namespaces/kube-system/secrets/x", resource="secrets", name="x",
               namespace="kube-system"), "CredentialAccess", 8.0),
        (_call("create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
               resource="clusterrolebindings", code=201), "Persistence", 8.0),
        (_call("deletecollection", "/api/v1/namespaces/default/events", resource="events",
               namespace="default"), "DefenseEvasion", 8.0),
        (_call("delete", "/api/v1/namespaces/default/pods/web", resource="pods", name="web",
               namespace="default"), "Impact", 8.0),
    ],
)
def test_each_tactic_of_the_anonymous_family(run, record, tactic, severity):
    [finding] = run([SuccessfulAnonymousAccess()], [record])
    assert finding["type"] == f"{tactic}:Kubernetes/SuccessfulAnonymousAccess"
    assert finding["severity"] == severity
    assert finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"] == {
        "ipAddressV4": "198.51.100.23"
    }


def test_unauthenticated_group_with_other_name_counts(run):
    [finding] = run([SuccessfulAnonymousAccess()], [_call("get", "/api", user="")])
    assert finding["type"] == "Discovery:Kubernetes/SuccessfulAnonymousAccess"


def test_authenticated_user_is_not_anonymous(run):
    record = _call("list", "/api/v1/namespaces/default/secrets", resource="secrets", namespace="default",
                   user="alice", groups=("system:authenticated",))
    assert run([SuccessfulAnonymousAccess()], [record]) == []


def test_first_forwarded_address_is_the_caller(run):
    record = _call("get", "/api")
    record["sourceIPs"] = ["2001:db8::7", "10.0.0.1"]
    [finding] = run([SuccessfulAnonymousAccess()], [record])
    call = finding["service"]["action"]["kubernetesApiCallAction"]
    assert call["remoteIpDetails"] == {"ipAddressV6": "2001:db8::7"}
    assert call["sourceIPs"] == ["2001:db8::7", "10.0.0.1"]


def test_different_source_ips_are_different_findings(run):
    findings = run([SuccessfulAnonymousAccess()], [_call("get", "/api", ip="198.51.100.1"),
                                                    _call("get", "/apis", ip="198.51.100.2")])
    assert len(findings) == 2
    assert len({f["id"] for f in findings}) == 2
