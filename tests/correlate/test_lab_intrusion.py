"""The intrusion rebuilt from the lab cluster's real audit events (tests/data/lab-scenario).

The admin's ordinary reads of the recording are replayed as nine days of her work from the office
address with kubectl; then the recording's own secret reads, permission checks, exec, RBAC writes and
the privileged and host-mounting pods are replayed on day ten from a public address with a Python
client: her credentials in someone else's hands. Bodies are the real API server's; only time, auditID,
source address and user agent are restamped (and the exec, which failed for want of a kubelet in the lab,
is given the 101 a real cluster logs). One sequence must come of it, and none of the nine days alone.
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubeguard.config import Settings
from kubeguard.correlate.sequences import SEQUENCE_TYPE
from kubeguard.scan import run_scan

ADMIN = "kubernetes-admin"
OFFICE, OFFICE_AGENT = "10.20.30.40", "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd"
INTRUDER, INTRUDER_AGENT = "45.148.10.77", "OpenAPI-Generator/31.0.0/python"
ORDINARY = {("get", "pods"), ("list", "pods"), ("get", "deployments"), ("list", "deployments"),
            ("get", "namespaces"), ("list", "namespaces"), ("list", "replicasets"), ("get", "serviceaccounts")}
ATTACK = {("list", "secrets"), ("get", "secrets"), ("create", "selfsubjectrulesreviews"), ("create", "pods"),
          ("create", "rolebindings"), ("create", "clusterrolebindings")}


def _key(event: dict) -> tuple[str, str]:
    ref = event.get("objectRef") or {}
    return event["verb"], ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")


def _stamp(event: dict, at: datetime, serial: str, ip: str, agent: str) -> dict:
    copied = copy.deepcopy(event)
    text = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    copied.update(requestReceivedTimestamp=text, stageTimestamp=text, auditID=f"lab-{serial}", sourceIPs=[ip],
                  userAgent=agent)
    return copied


def _admin_events(lab_dir: Path) -> list[dict]:
    with gzip.open(lab_dir / "audit.jsonl.gz") as lines:
        events = [json.loads(line) for line in lines]
    return [e for e in events if e["user"].get("username") == ADMIN and e.get("stage") == "ResponseComplete"]


def build(lab_dir: Path, directory: Path) -> tuple[Path, Path]:
    admin = _admin_events(lab_dir)
    ordinary = [e for e in admin if _key(e) in ORDINARY and e["responseStatus"]["code"] < 400]
    start = datetime(2026, 3, 2, tzinfo=UTC)
    history: list[dict] = []
    for day in range(9):
        for hour in (9, 11, 14, 16):
            for index, event in enumerate(ordinary):
                at = start + timedelta(days=day, hours=hour, seconds=7 * index)
                history.append(_stamp(event, at, f"{day}-{hour}-{index}", OFFICE, OFFICE_AGENT))
    attack: list[dict] = []
    at = start + timedelta(days=9, hours=22)
    for index, event in enumerate(e for e in admin if _key(e) in ATTACK or _key(e) == ("create", "pods/exec")):
        at += timedelta(seconds=20)
        stamped = _stamp(event, at, f"attack-{index}", INTRUDER, INTRUDER_AGENT)
        if _key(event) == ("create", "pods/exec"):
            stamped.update(stage="ResponseStarted", responseStatus={"metadata": {}, "code": 101})
        attack.append(stamped)
    quiet, full = directory / "history.jsonl", directory / "intrusion.jsonl"
    quiet.write_text("".join(json.dumps(e) + "\n" for e in history))
    full.write_text("".join(json.dumps(e) + "\n" for e in [*history, *attack]))
    return quiet, full


@pytest.fixture(scope="module")
def lab_logs(lab_dir, tmp_path_factory) -> tuple[Path, Path]:
    return build(lab_dir, tmp_path_factory.mktemp("lab-intrusion"))


def test_the_lab_intrusion_is_one_sequence_with_the_secrets_read_and_the_privileged_pod(lab_logs):
    findings = run_scan([str(lab_logs[1])], Settings(), pipeline_options={}).findings
    (sequence,) = [f for f in findings if f["type"] == SEQUENCE_TYPE]
    names = {s["name"] for s in sequence["service"]["detection"]["sequence"]["signals"]}
    assert "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed" in names
    assert "PrivilegeEscalation:Kubernetes/PrivilegedContainer" in names
    assert "Persistence:Kubernetes/ContainerWithSensitiveMount" in names
    assert INTRUDER in {e["ip"] for e in sequence["service"]["detection"]["sequence"]["endpoints"]}
    members = [f for f in findings if f.get("associatedAttackSequenceArn") == sequence["arn"]]
    assert all(INTRUDER in f["service"]["action"]["kubernetesApiCallAction"]["sourceIPs"] for f in members)


def test_her_nine_ordinary_days_raise_nothing(lab_logs):
    findings = run_scan([str(lab_logs[0])], Settings(), pipeline_options={}).findings
    assert [f["type"] for f in findings] == []
