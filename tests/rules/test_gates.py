"""Gates and the verb/resource index only skip rules that cannot match: the detector finds exactly what
evaluating every rule on every event finds, on a real log."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kubeguard.audit.decode import decode_bytes
from kubeguard.detectors.base import DetectionContext
from kubeguard.detectors.rules.detector import SigmaRules
from kubeguard.detectors.rules.fields import EventView
from kubeguard.detectors.rules.load import load_rules
from kubeguard.detectors.state import MemoryState
from rules.sigma_helpers import rule

ROOT = Path(__file__).resolve().parents[2]

DETECTIONS = [
    {"sel": {"userAgent|re": "^curl/"}, "condition": "sel"},
    {"sel": {"userAgent|contains": ["python", "curl"]}, "condition": "sel"},
    {"sel": {"user.username|startswith": "system:serviceaccount:"}, "f": {"verb": "watch"},
     "condition": "sel and not f"},
    {"sel": {"responseStatus.code|gte": 400, "sourceIPs|cidr": "127.0.0.0/8"}, "condition": "sel"},
    {"sel": {"objectRef.namespace": "kube-system", "verb": ["get", "create"]}, "condition": "sel"},
    {"a": {"objectRef.namespace": "dev"}, "b": {"objectRef.namespace": "prod"}, "condition": "a or b"},
    {"sel": {"verb|re": "^(create|delete)$", "objectRef.resource": "pods"}, "condition": "sel"},
    {"sel": {"user.username": "kubernetes-admin"}, "x": {"objectRef.subresource": None}, "condition": "sel and x"},
    {"sel": {"annotations.authorization.k8s.io/decision": "forbid"}, "condition": "sel"},
    {"sel": {"responseStatus.code": [401, 403]}, "condition": "sel"},
]


@pytest.fixture(scope="module")
def rules():
    compiled = [rule(d, title=f"Rule {i}") for i, d in enumerate(DETECTIONS)]
    return [*compiled, *load_rules([ROOT / "examples" / "rules"])]


def test_most_of_these_rules_have_a_gate(rules):
    gated = [r for r in rules if r.gate is not None]
    assert {r.gate.field for r in gated} >= {"userAgent", "user.username", "responseStatus.code", "objectRef.namespace"}
    assert rules[6].gate is None or rules[6].gate.field != "objectRef.resource"  # indexed fields are not gates


def test_the_detector_matches_exactly_what_every_rule_alone_matches(rules):
    events = decode_bytes(gzip.decompress((ROOT / "examples" / "lab-audit.jsonl.gz").read_bytes())).events
    detector = SigmaRules(rules)
    context = DetectionContext(state=MemoryState())
    total = 0
    for event in events:
        if event.stage != "ResponseComplete":
            continue
        expected = {r.rule_id for r in rules if r.matcher(EventView(event))}
        found = {d.additional_info["customDetectionRuleId"] for d in detector.detect(event, context)}
        assert found == expected, event.auditID
        total += len(found)
    assert total > 100  # the rules do match: the comparison is not between two empty sets


def test_exists_on_a_one_value_field_is_a_gate():
    compiled = rule({"sel": {"impersonatedUser.username|exists": True}, "condition": "sel"})
    assert compiled.gate is not None and compiled.gate.field == "impersonatedUser.username"
