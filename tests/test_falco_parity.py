"""Parity with Falco's k8saudit rules over Falco's own labelled fixtures (docs/falco-parity.md).

For every labelled case that does not depend on an allow-list or a custom rules file, kubeguard must
raise exactly the findings of the same meaning: the mapped GuardDuty type where one exists, nothing
where GuardDuty has no such type, and nothing where Falco expects nothing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kubeguard.audit.decode import decode_bytes
from kubeguard.config import Settings
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.findings.types import AUDIT_TRAIL_PACK, CATALOGUE
from kubeguard.pipeline import FindingSet, Pipeline

#: Falco rule → (the kubeguard finding type of the same meaning, on by default?); None: no counterpart.
RULE_TO_FINDING: dict[str, tuple[str, bool] | None] = {
    "Create Privileged Pod": ("PrivilegeEscalation:Kubernetes/PrivilegedContainer", True),
    "Create Sensitive Mount Pod": ("Persistence:Kubernetes/ContainerWithSensitiveMount", True),
    "Anonymous Request Allowed": ("Impact:Kubernetes/SuccessfulAnonymousAccess", True),  # a namespace create
    # Exec/attach in kube-system is ExecInKubeSystemPod (default); these fixtures exec into a pod in `default`.
    "Attach/Exec Pod": ("Execution:Kubernetes/ExecInPod", False),
    "Create HostNetwork Pod": ("PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces", False),
    "Create NodePort Service": ("Policy:Kubernetes/NodePortServiceCreated", False),
    "Create/Modify Configmap With Private Credentials": (
        "CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials", True),
    "Pod Created in Kube Namespace": ("Persistence:Kubernetes/WorkloadCreatedInSystemNamespace", False),
    "Service Account Created in Kube Namespace": (
        "Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace", False),
    "System ClusterRole Modified/Deleted": ("Persistence:Kubernetes/SystemClusterRoleModified", True),
    "Attach to cluster-admin Role": ("PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound", False),
    "ClusterRole With Wildcard Created": ("PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated", False),
    "ClusterRole With Write Privileges Created": (
        "PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated", False),
    "ClusterRole With Pod Exec Created": ("PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated", False),
    # Falco's INFO activity rules are an activity log, not detections.
    "K8s Deployment Created": None, "K8s Deployment Deleted": None,
    "K8s Service Created": None, "K8s Service Deleted": None,
    "K8s ConfigMap Created": None, "K8s ConfigMap Deleted": None,
    "K8s Namespace Created": None, "K8s Namespace Deleted": None,
    "K8s Serviceaccount Created": None, "K8s Serviceaccount Deleted": None,
    "K8s Role/Clusterrole Created": None, "K8s Role/Clusterrole Deleted": None,
    "K8s Role/Clusterrolebinding Created": None, "K8s Role/Clusterrolebinding Deleted": None,
    "K8s Secret Created": None, "K8s Secret Deleted": None,
}
#: Cases where kubeguard deliberately raises nothing although Falco fires (docs/falco-parity.md says why).
DIVERGENCES = {
    # Pods stamped out by the replicaset controller for a Deployment: kubeguard reports the owner's
    # creation by whoever made it, not every replica the controller makes (the owner is not in these logs).
    "create_pod_in_kube_system_namespace",
    "create_pod_in_kube_public_namespace",
}
#: Cases where the audit-trail pack records more than Falco: the node-problem-detector patch rewrites the
#: rules of a ClusterRole that grants write verbs, which the pack records on change as well as on create.
PACK_ALSO_RAISES = {"system_clusterrole_modified": {"PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated"}}


def _override(rules_files: str) -> bool:
    """Cases whose outcome depends on an allow-list, trust list or custom rules file not in the corpus."""
    return any(f.startswith(("allow_", "trust_", "disallow_", "single_rule_")) for f in rules_files.split(","))


def _cases(falco_dir: Path) -> list[dict[str, str]]:
    with (falco_dir / "expected_detections.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _scan(data: bytes, packs: tuple[str, ...] = (AUDIT_TRAIL_PACK,)) -> set[str]:
    pipeline = Pipeline(Settings(), MemoryState(), detectors=default_detectors(packs))
    findings = FindingSet()
    for event in decode_bytes(data).events:
        for finding in pipeline.process_event(event):
            findings.add(finding)
    return {f["type"] for f in findings.values()}


def _expected(row: dict[str, str], *, default_only: bool = False) -> set[str]:
    if row["detect"] != "True" or row["test"] in DIVERGENCES:
        return set()
    rules = [rule for counts in json.loads(row["detect_counts"]) for rule in counts]
    mapped = [RULE_TO_FINDING[rule] for rule in rules if RULE_TO_FINDING[rule] is not None]
    expected = {finding for finding, on_by_default in mapped if on_by_default or not default_only}
    return expected if default_only else expected | PACK_ALSO_RAISES.get(row["test"], set())


def test_every_falco_rule_in_the_corpus_is_mapped_or_allow_list_dependent(falco_dir):
    for row in _cases(falco_dir):
        if row["detect"] == "True" and not _override(row["rules_files"]):
            for counts in json.loads(row["detect_counts"]):
                assert set(counts) <= set(RULE_TO_FINDING), row["test"]


@pytest.mark.parametrize("default_only", [False, True], ids=["with-audit-trail-pack", "default"])
def test_kubeguard_raises_the_finding_of_the_same_meaning_for_every_falco_case(falco_dir, default_only):
    checked, mismatches = [], []
    packs = () if default_only else (AUDIT_TRAIL_PACK,)
    for row in _cases(falco_dir):
        if _override(row["rules_files"]):
            continue
        data = (falco_dir / row["trace_file"]).read_bytes()
        expected = _expected(row, default_only=default_only)
        raised = _scan(data, packs)
        checked.append(row["test"])
        if raised != expected:
            mismatches.append((row["test"], expected, raised))
    assert mismatches == []
    # The mapped cases really were exercised, not skipped.
    assert {"create_privileged_pod", "create_privileged_2nd_container_pod", "anonymous_user",
            "create_sensitive_mount_pod", "create_unprivileged_pod", "fal_01_003", "pod_exec"} <= set(checked)


def test_exec_and_attach_fixtures_map_to_exec_in_kube_system_pod_when_moved_to_kube_system(falco_dir):
    for name in ("exec_pod.json", "attach_pod.json"):
        record = json.loads((falco_dir / name).read_text())
        record["objectRef"]["namespace"] = "kube-system"
        record["requestURI"] = record["requestURI"].replace("/namespaces/default/", "/namespaces/kube-system/")
        assert _scan(json.dumps(record).encode()) == {"Execution:Kubernetes/ExecInKubeSystemPod"}, name


def test_every_kubeguard_counterpart_is_in_the_catalogue_with_the_stated_default():
    for counterpart in filter(None, RULE_TO_FINDING.values()):
        finding, on_by_default = counterpart
        assert (CATALOGUE[finding].pack == "") is on_by_default, finding


@pytest.mark.parametrize("name", ["create_nginx_pod_privileged.json",
                                  "create_nginx_pod_privileged_2nd_container.json"])
def test_privileged_finding_names_the_privileged_container(falco_dir, name):
    pipeline = Pipeline(Settings(), MemoryState())
    [event] = decode_bytes((falco_dir / name).read_bytes()).events
    [finding] = pipeline.process_event(event)
    containers = finding["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["containers"]
    assert any(c.get("securityContext", {}).get("privileged") for c in containers)
