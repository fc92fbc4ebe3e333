"""GuardDuty's Custom Detection Rules API, with boto3, against a running kubeguard with Sigma rules loaded."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import orjson
import pytest

from api.conftest import guardduty_client

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "rules"
LAB = ROOT / "examples" / "lab-audit.jsonl.gz"
SECRETS_RULE = "6c1d7a52-0b8e-4f3c-a7a9-4f0e2d9c8b31"
PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"


def feed_lab(server) -> None:
    lines = gzip.decompress(LAB.read_bytes()).splitlines()
    for start in range(0, len(lines), 200):
        body = b'{"kind":"EventList","items":[' + b",".join(lines[start : start + 200]) + b"]}"
        assert httpx.post(f"{server.url}/k8s-audit/lab", content=body).status_code == 200
    server.wait_drained()


@pytest.fixture
def rules_server(make_server):
    return make_server(f'[rules]\npaths = ["{RULES}"]\n')


def _findings(gd) -> list[dict]:
    [detector] = gd.list_detectors()["DetectorIds"]
    ids = gd.list_findings(DetectorId=detector, MaxResults=50)["FindingIds"]
    return gd.get_findings(DetectorId=detector, FindingIds=ids)["Findings"] if ids else []


def test_list_and_get_rules_built_in_and_sigma(rules_server):
    gd = guardduty_client(rules_server.url)
    rules, token = [], None
    while True:  # page by page, as a console would
        page = gd.list_custom_detection_rules(MaxResults=7, **({"NextToken": token} if token else {}))
        rules += page["Rules"]
        token = page.get("NextToken")
        if not token:
            break
    names = {r["Name"] for r in rules}
    assert PRIVILEGED in names and "Secrets read by an unauthenticated caller" in names
    assert len({r["RuleId"] for r in rules}) == len(rules)
    sigma = [r for r in rules if r.get("Language") == "SIGMA"]
    assert len(sigma) == 5
    high = gd.list_custom_detection_rules(Filters=[{"Name": "severity", "Values": ["CRITICAL"], "Condition": "EQUALS"}])
    assert {r["Name"] for r in high["Rules"]} == {"Secrets read by an unauthenticated caller"}
    contains = gd.list_custom_detection_rules(Filters=[{"Name": "name", "Values": ["impersonating another"],
                                                        "Condition": "CONTAINS"}])
    assert [r["Name"] for r in contains["Rules"]] == ["Request made while impersonating another identity"]
    got = gd.get_custom_detection_rule(RuleId=SECRETS_RULE)["Rule"]
    assert got["Severity"] == "CRITICAL" and got["Tactic"] == "CredentialAccess" and got["Technique"] == "T1552.007"
    assert "system:anonymous" in got["Definition"]["Expression"]
    assert got["Arn"].endswith(f":custom-detection-rule/{SECRETS_RULE}")
    with pytest.raises(gd.exceptions.ResourceNotFoundException):
        gd.get_custom_detection_rule(RuleId="no-such-rule")


def test_dry_run_association_counts_and_raises_nothing_then_live_raises(rules_server):
    gd = guardduty_client(rules_server.url)
    built_in = next(r["RuleId"] for r in gd.list_custom_detection_rules(MaxResults=100)["Rules"]
                    if r["Name"] == PRIVILEGED)
    trial = gd.create_custom_detection_rule_association(RuleId=SECRETS_RULE, Mode="DRY_RUN")["RuleAssociation"]
    quiet = gd.create_custom_detection_rule_association(RuleId=built_in, Mode="DRY_RUN")["RuleAssociation"]
    assert trial["Mode"] == "DRY_RUN" and trial["RuleId"] == SECRETS_RULE
    with pytest.raises(gd.exceptions.ConflictException):
        gd.create_custom_detection_rule_association(RuleId=SECRETS_RULE, Mode="LIVE")
    feed_lab(rules_server)
    found = _findings(gd)
    names = {f.get("CustomDetectionRuleName") for f in found}
    assert "Secrets read by an unauthenticated caller" not in names
    assert "Service account token used from a script" in names
    assert PRIVILEGED not in {f["Type"] for f in found}
    raw = httpx.get(f"{rules_server.url}/custom-detection-rule/rule/{SECRETS_RULE}/association/"
                    f"{trial['AssociationId']}").json()
    assert raw["ruleAssociation"]["matchCount"] == {"live": 0, "dryRun": 2}
    listed = gd.list_custom_detection_rule_associations(Mode="DRY_RUN")["RuleAssociations"]
    assert {a["AssociationId"] for a in listed} == {trial["AssociationId"], quiet["AssociationId"]}

    gd.update_custom_detection_rule_association(RuleId=SECRETS_RULE, AssociationId=trial["AssociationId"],
                                                Mode="LIVE")
    gd.delete_custom_detection_rule_association(RuleId=built_in, AssociationId=quiet["AssociationId"])
    assert gd.list_custom_detection_rule_associations(Mode="DRY_RUN")["RuleAssociations"] == []
    rules_server.stop()
    rules_server.start()  # the association is kept in the store and applied again
    gd = guardduty_client(rules_server.url)
    got = gd.get_custom_detection_rule_association(RuleId=SECRETS_RULE, AssociationId=trial["AssociationId"])
    assert got["RuleAssociation"]["Mode"] == "LIVE"
    anonymous = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "anon-2", "stage": "ResponseComplete",
                 "verb": "list", "requestURI": "/api/v1/secrets", "user": {"username": "system:anonymous"},
                 "sourceIPs": ["203.0.113.9"], "objectRef": {"resource": "secrets"}, "responseStatus": {"code": 200},
                 "stageTimestamp": "2026-11-30T10:00:00.000000Z"}
    assert httpx.post(f"{rules_server.url}/k8s-audit/lab", content=orjson.dumps(anonymous)).status_code == 200
    rules_server.wait_drained()
    live = [f for f in _findings(gd) if f.get("CustomDetectionRuleName") == "Secrets read by an unauthenticated caller"]
    assert [f["Service"]["Count"] for f in live] == [1]


def test_org_configuration_is_an_unsupported_operation_and_findings_filter_by_rule(rules_server):
    gd = guardduty_client(rules_server.url)
    with pytest.raises(gd.exceptions.ClientError) as caught:
        gd.list_custom_detection_rule_org_configurations()
    assert caught.value.response["Error"]["Code"] == "UnsupportedOperationException"
    feed_lab(rules_server)
    [detector] = gd.list_detectors()["DetectorIds"]
    criterion = {"service.additionalInfo.customDetectionRuleName": {"Eq": ["Denied attempt to change RBAC"]}}
    ids = gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": criterion})["FindingIds"]
    [finding] = gd.get_findings(DetectorId=detector, FindingIds=ids)["Findings"]
    assert finding["CustomDetectionRuleName"] == "Denied attempt to change RBAC"
    assert finding["Service"]["Count"] == 1
