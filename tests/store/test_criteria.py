"""FindingCriteria semantics on wire-format findings (reference §3.3)."""

import pytest

from kubeguard.findings.criteria import CriteriaError, matches, validate

FINDING = {
    "id": "f" * 32,
    "type": "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
    "severity": 8.0,
    "updatedAt": "2024-05-14T10:02:55.019Z",
    "resource": {
        "kubernetesDetails": {
            "kubernetesWorkloadDetails": {
                "hostIPC": True,
                "containers": [{"image": "nginx"}, {"image": "ghcr.io/evil/miner:1"}],
            }
        }
    },
    "service": {
        "archived": False,
        "count": 3,
        "additionalInfo": {"value": '{"threatListName":"acme-blocklist","sample":true}', "type": "default"},
        "action": {"kubernetesApiCallAction": {"sourceIPs": ["10.0.0.1", "198.51.100.23"]}},
    },
}
CONTAINERS = "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.image"


@pytest.mark.parametrize(
    "criterion, expected",
    [
        ({"severity": {"gte": 7}}, True),
        ({"severity": {"gte": 4, "lt": 7}}, False),
        ({"severity": {"eq": ["8"]}}, True),
        ({"service.archived": {"eq": ["false"]}}, True),
        ({"service.archived": {"eq": ["true"]}}, False),
        ({CONTAINERS: {"eq": ["ghcr.io/evil/miner:1"]}}, True),  # any element of a list path
        ({CONTAINERS: {"neq": ["nginx"]}}, False),  # neq: equal to none
        ({CONTAINERS: {"matches": ["ghcr.io/*"]}}, True),
        ({CONTAINERS: {"notMatches": ["*miner*"]}}, False),
        ({CONTAINERS: {"matches": ["ngin?"]}}, True),
        ({"resource.kubernetesDetails.kubernetesWorkloadDetails.hostIpc": {"eq": ["true"]}}, True),
        ({"service.action.kubernetesApiCallAction.sourceIPs": {"equals": ["198.51.100.23"]}}, True),
        ({"service.additionalInfo.threatListName": {"eq": ["acme-blocklist"]}}, True),
        ({"service.additionalInfo.sample": {"eq": ["true"]}}, True),
        ({"updatedAt": {"greaterThanOrEqual": 1715680975019}}, True),
        ({"updatedAt": {"greaterThan": 1715680975019}}, False),
        ({"type": {"eq": ["A", "PrivilegeEscalation:Kubernetes/PrivilegedContainer"]}, "severity": {"lt": 8}}, False),
        ({"resource.kubernetesDetails.kubernetesUserDetails.username": {"neq": ["x"]}}, True),
        ({"resource.kubernetesDetails.kubernetesUserDetails.username": {"eq": ["x"]}}, False),
    ],
)
def test_criterion(criterion, expected):
    assert matches(validate(criterion, allow_wildcards=True), FINDING) is expected


def test_wildcards_are_only_for_filters():
    with pytest.raises(CriteriaError, match="only accepted by filters"):
        validate({"type": {"matches": ["*"]}}, allow_wildcards=False)


@pytest.mark.parametrize(
    "criterion",
    [{"type": {"eq": "x"}}, {"severity": {"gte": "7"}}, {"bad field!": {"eq": ["x"]}}, {"type": {"like": ["x"]}}],
)
def test_invalid_criteria_are_refused(criterion):
    with pytest.raises(CriteriaError):
        validate(criterion, allow_wildcards=True)


def test_wildcard_brackets_are_literal():
    assert matches({"type": {"matches": ["[ab]*"]}}, {"type": "[ab]c"})
    assert not matches({"type": {"matches": ["[ab]*"]}}, {"type": "ac"})


def test_an_unknown_field_is_refused_with_the_closest_valid_names():
    with pytest.raises(CriteriaError, match=r"unknown criterion field 'nope.field'"):
        validate({"nope.field": {"eq": ["x"]}}, allow_wildcards=False)
    with pytest.raises(CriteriaError, match="did you mean severity"):
        validate({"severty": {"gte": 4}}, allow_wildcards=False)


def test_filter_field_spelling_is_case_insensitive_and_additional_info_is_open():
    assert validate({"resource.kubernetesDetails.kubernetesWorkloadDetails.hostIPC": {"eq": ["true"]}},
                    allow_wildcards=False)
    assert validate({"service.additionalInfo.anyKeyAtAll": {"eq": ["x"]}}, allow_wildcards=False)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**40])
def test_numbers_beyond_64_bits_are_refused(value):
    with pytest.raises(CriteriaError, match="64-bit"):
        validate({"updatedAt": {"gte": value}}, allow_wildcards=False)
