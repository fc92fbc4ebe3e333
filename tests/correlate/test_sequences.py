"""AttackSequence:EKS/CompromisedCluster on a simulated intrusion, and none on ordinary work."""

from __future__ import annotations

import copy

from findings.test_wire_model import check

from kubeguard.config import Settings
from kubeguard.correlate.sequences import SEQUENCE_TYPE, correlate
from kubeguard.correlate.stage import with_sequences
from kubeguard.scan import run_scan

SECRETS = "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"
PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"


def sequences(findings):
    return [f for f in findings if f["type"] == SEQUENCE_TYPE]


def test_the_intrusion_is_one_critical_sequence_listed_first_and_naming_its_members(intrusion):
    (sequence,) = sequences(intrusion.findings)
    assert intrusion.findings[0] is sequence
    assert sequence["severity"] == 9.0
    check(sequence, "Finding")
    body = sequence["service"]["detection"]["sequence"]
    assert body["uid"] == sequence["id"]
    named = {s["name"] for s in body["signals"] if s["type"] == "FINDING"}
    assert {SECRETS, PRIVILEGED} <= named
    assert "Persistence:Kubernetes/ContainerWithSensitiveMount" in named
    members = [f for f in intrusion.findings if f.get("associatedAttackSequenceArn") == sequence["arn"]]
    assert {f["arn"] for f in members} == {s["uid"] for s in body["signals"] if s["type"] == "FINDING"}
    assert set(intrusion.label["findingTypes"]) <= {f["type"] for f in members}
    actors = {a["user"]["name"] for a in body["actors"]}
    assert actors == {"erin@example.com"}
    keys = {i["key"]: i["values"] for i in body["sequenceIndicators"]}
    assert {"Credential Access", "Privilege Escalation", "Initial Access"} <= set(keys["ATTACK_TACTIC"])
    assert "UNUSUAL_ASN_FOR_USER" in keys
    assert any(v.startswith("OpenAPI-Generator") for v in keys["SUSPICIOUS_USER_AGENT"])
    assert intrusion.label["sourceIPs"][0] in {e["ip"] for e in body["endpoints"]}


def test_ordinary_work_of_the_same_nine_days_raises_no_sequence(intrusion):
    result = run_scan([str(intrusion.benign_log)], Settings(), pipeline_options={})
    assert sequences(result.findings) == []
    assert result.stats.counted > 100_000


def test_correlating_again_updates_the_sequence_instead_of_duplicating_it(intrusion):
    (sequence,) = sequences(intrusion.findings)
    again = with_sequences(intrusion.findings)
    assert [s["id"] for s in sequences(again)] == [sequence["id"]]
    assert sequences(again)[0]["createdAt"] == sequence["createdAt"]


def test_the_id_is_the_same_when_the_findings_arrive_in_another_order(intrusion):
    plain = [f for f in intrusion.findings if f["type"] != SEQUENCE_TYPE]
    (first,) = correlate(plain).sequences
    (reordered,) = correlate(list(reversed(plain))).sequences
    assert first["id"] == reordered["id"] == sequences(intrusion.findings)[0]["id"]


def test_a_later_signal_extends_the_stored_sequence(intrusion):
    plain = sorted((f for f in intrusion.findings if f["type"] != SEQUENCE_TYPE),
                   key=lambda f: f["service"]["eventFirstSeen"])
    attack = [f for f in plain if f.get("associatedAttackSequenceArn")]
    early = [f for f in plain if f not in attack[-2:]]
    (partial,) = correlate(early).sequences
    (complete,) = correlate([*plain, partial]).sequences
    assert complete["id"] == partial["id"]
    assert len(complete["service"]["detection"]["sequence"]["signals"]) > len(
        partial["service"]["detection"]["sequence"]["signals"])


def test_archived_findings_are_left_out(intrusion):
    plain = [copy.deepcopy(f) for f in intrusion.findings if f["type"] != SEQUENCE_TYPE]
    for finding in plain:
        if finding["type"].startswith(("PrivilegeEscalation:", "Persistence:", "Execution:", "Policy:")):
            finding["service"]["archived"] = True
    assert [s["service"]["detection"]["sequence"]["description"] for s in correlate(plain).sequences] == []


def test_findings_of_different_subjects_do_not_chain(intrusion):
    plain = [copy.deepcopy(f) for f in intrusion.findings if f["type"] != SEQUENCE_TYPE]
    for finding in plain:
        if not finding["type"].startswith(("CredentialAccess:", "Discovery:")):
            user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]
            user["username"] = "someone-else"
            finding["service"]["action"]["kubernetesApiCallAction"]["sourceIPs"] = ["10.0.0.9"]
    assert [s["service"]["detection"]["sequence"]["description"] for s in correlate(plain).sequences] == []
