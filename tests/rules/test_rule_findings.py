"""A rule's finding on the wire (botocore's model), its aggregation, and DRY_RUN mode."""

from __future__ import annotations

import json

from botocore.model import ServiceModel
from botocore.parsers import RestJSONParser
from conftest import build_event
from findings.test_wire_model import MODEL, check

from kubeguard.config import Settings
from kubeguard.detectors.base import DetectionContext
from kubeguard.detectors.rules.detector import DRY_RUN, SigmaRules
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline
from rules.sigma_helpers import BASE_EVENT, rule

DETECTION = {"sel": {"verb": "create", "objectRef.resource": "pods", "requestObject.spec.hostNetwork": True},
             "condition": "sel"}


def _findings(detector: SigmaRules, users: list[str]) -> list[dict]:
    pipeline = Pipeline(Settings(), MemoryState(), detectors=[detector])
    found = FindingSet()
    for index, user in enumerate(users):
        event = build_event({**BASE_EVENT, "auditID": f"id-{index}", "user": {"username": user}})
        for finding in pipeline.process_event(event):
            found.add(finding)
    return found.values()


def test_rule_finding_is_a_valid_guardduty_finding_that_boto3_reads():
    compiled = rule(DETECTION, title="Host network pod", level="critical",
                    tags=["attack.privilege_escalation", "attack.t1611"])
    [finding] = _findings(SigmaRules([compiled]), ["alice"])
    check(finding, "Finding")
    output = ServiceModel(MODEL, service_name="guardduty").operation_model("GetFindings").output_shape
    body = json.dumps({"findings": [finding]}).encode()
    [parsed] = RestJSONParser().parse({"status_code": 200, "headers": {}, "body": body}, output)["Findings"]
    assert parsed["CustomDetectionRuleName"] == "Host network pod"
    assert parsed["Type"] == "PrivilegeEscalation:Kubernetes/HostNetworkPod"
    assert parsed["Severity"] == 9.0


def test_findings_aggregate_per_rule_and_principal():
    compiled = rule(DETECTION, title="Host network pod")
    findings = _findings(SigmaRules([compiled]), ["alice", "bob", "alice", "alice"])
    counts = {f["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]: f["service"]["count"]
              for f in findings}
    assert counts == {"alice": 3, "bob": 1}
    assert {f["type"] for f in findings} == {"Policy:Kubernetes/HostNetworkPod"}  # no ATT&CK tag: Policy


def test_dry_run_counts_matches_and_raises_nothing():
    live, trial = rule(DETECTION, title="Live rule"), rule(DETECTION, title="Trial rule")
    detector = SigmaRules([live, trial])
    detector.modes[trial.rule_id] = DRY_RUN
    findings = _findings(detector, ["alice", "bob"])
    assert {f["customDetectionRuleName"] for f in findings} == {"Live rule"}
    assert detector.dry_run_matches[trial.rule_id] == 2 and detector.matches[trial.rule_id] == 0
    assert detector.matches[live.rule_id] == 2


def test_default_mode_dry_run_applies_to_every_rule_without_an_association():
    compiled = rule(DETECTION, title="Trial rule")
    detector = SigmaRules([compiled], default_mode=DRY_RUN)
    assert _findings(detector, ["alice"]) == []
    assert detector.dry_run_matches[compiled.rule_id] == 1


def test_rules_are_offered_only_events_of_their_verbs_and_resources():
    pods = rule(DETECTION, title="Pods")
    anything = rule({"sel": {"user.username": "alice"}, "condition": "sel"}, title="Alice")
    detector = SigmaRules([pods, anything])
    assert detector.candidates("create", "pods") == (pods, anything)
    assert detector.candidates("get", "secrets") == (anything,)
    event = build_event({**BASE_EVENT, "verb": "get", "objectRef": {"resource": "secrets"}})
    found = detector.detect(event, DetectionContext(state=MemoryState()))
    assert [d.custom_rule_name for d in found] == ["Alice"]


def _exec_stage(stage: str) -> dict:
    return {**BASE_EVENT, "auditID": "exec-1", "stage": stage, "verb": "create",
            "requestURI": "/api/v1/namespaces/dev/pods/web/exec?command=sh",
            "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "dev", "name": "web"},
            "responseStatus": {"code": 101}}


def test_an_exec_counts_once_per_rule_whichever_stage_the_rule_names():
    any_stage = rule({"sel": {"objectRef.subresource": "exec"}, "condition": "sel"}, title="Exec")
    complete = rule({"sel": {"objectRef.subresource": "exec", "stage": "ResponseComplete"}, "condition": "sel"},
                    title="Exec completed")
    pipeline = Pipeline(Settings(), MemoryState(), detectors=[SigmaRules([any_stage, complete])])
    found = FindingSet()
    for stage in ("ResponseStarted", "ResponseComplete", "ResponseComplete"):  # the last one is a replay
        for finding in pipeline.process_event(build_event(_exec_stage(stage))):
            found.add(finding)
    counts = {f["customDetectionRuleName"]: f["service"]["count"] for f in found.values()}
    assert counts == {"Exec": 1, "Exec completed": 1}


def test_two_rules_with_one_title_raise_separate_findings():
    first = rule(DETECTION, title="Same title", id="11111111-1111-4111-8111-111111111111")
    second = rule(DETECTION, title="Same title", id="22222222-2222-4222-8222-222222222222")
    findings = _findings(SigmaRules([first, second]), ["alice"])
    assert len({f["id"] for f in findings}) == 2
    assert {f["type"] for f in findings} == {"Policy:Kubernetes/SameTitle"}
