"""Every finding kubeguard can raise is a valid GuardDuty ``Finding`` by botocore's service model."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import botocore.loaders
import pytest
from botocore.model import ServiceModel
from botocore.parsers import RestJSONParser
from detectors.extension_cases import TRIGGERS

from kubeguard.config import Settings
from kubeguard.detectors.base import Detection
from kubeguard.detectors.common import make_detection
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.findings.builder import FindingBuilder
from kubeguard.findings.types import (
    ALL_FINDING_TYPES,
    AUDIT_TRAIL_PACK,
    CALLER_VARIANTS,
    CATALOGUE,
    EXTENSION_FINDING_TYPES,
    GUARDDUTY_FINDING_TYPES,
)
from kubeguard.pipeline import FindingSet, Pipeline

MODEL = botocore.loaders.Loader().load_service_model("guardduty", "service-2")
SHAPES = MODEL["shapes"]
PACKS = (AUDIT_TRAIL_PACK,)
SCALARS = {"string": (str,), "boolean": (bool,), "integer": (int,), "long": (int,), "double": (int, float),
           "float": (int, float), "timestamp": (int, float)}


def check(value: Any, shape_name: str, path: str = "finding") -> None:
    shape = SHAPES[shape_name]
    kind = shape["type"]
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: {shape_name} must be an object"
        members = {m.get("locationName", name): m["shape"] for name, m in shape["members"].items()}
        for key, item in value.items():
            assert key in members, f"{path}.{key} is not a member of {shape_name}"
            check(item, members[key], f"{path}.{key}")
        for required in shape.get("required", ()):
            wire = shape["members"][required].get("locationName", required)
            assert wire in value, f"{path}.{wire} is required by {shape_name}"
    elif kind == "list":
        assert isinstance(value, list), f"{path}: {shape_name} must be a list"
        for index, item in enumerate(value):
            check(item, shape["member"]["shape"], f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: {shape_name} must be a map"
        for key, item in value.items():
            assert isinstance(key, str)
            check(item, shape["value"]["shape"], f"{path}.{key}")
    else:
        expected = SCALARS[kind]
        assert isinstance(value, expected) and not (kind != "boolean" and isinstance(value, bool)), (
            f"{path}: {value!r} is not a {kind}")
        if "enum" in shape:
            assert value in shape["enum"], f"{path}: {value!r} not in {shape_name} enum"
        if kind == "string" and "max" in shape:
            assert shape.get("min", 0) <= len(value) <= shape["max"], f"{path}: length out of bounds"


def _call(verb, uri, resource="", *, user="system:anonymous", code=200, namespace="", name="", body=None):
    record = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"{verb}{uri}{user}",
              "stage": "ResponseComplete", "verb": verb, "requestURI": uri,
              "user": {"username": user, "groups": ["system:unauthenticated"]}, "sourceIPs": ["198.51.100.4"],
              "userAgent": "curl/8.5.0", "responseStatus": {"code": code},
              "stageTimestamp": "2024-05-14T09:31:07.412345Z"}
    if resource:
        record["objectRef"] = {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"}
    if body is not None:
        record["responseObject"] = body
    return record


EXTRA_TRIGGERS = [
    _call("get", "/api"),
    _call("create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebindings", code=201),
    _call("deletecollection", "/api/v1/namespaces/default/events", "events", namespace="default"),
    *[_call("patch", f"/api/v1/namespaces/{ns}/services/{name}", "services", user="kubernetes-admin",
            namespace=ns, name=name,
            body={"kind": "Service", "metadata": {"name": name, "namespace": ns},
                  "spec": {"type": "LoadBalancer"}})
      for ns, name in (("kubernetes-dashboard", "kubernetes-dashboard"), ("kubeflow", "centraldashboard"))],
    _call("create", "/api/v1/namespaces/kube-system/pods/coredns-1/exec?command=id&stdout=true", "pods",
          user="kubernetes-admin", code=101, namespace="kube-system", name="coredns-1") | {
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "kube-system", "name": "coredns-1",
                      "apiVersion": "v1"}},
]


@pytest.fixture(scope="module")
def raised(lab_dir: Path) -> dict[str, dict]:
    """One finding per type the detectors raise on the lab log plus a trigger for each remaining type."""
    from kubeguard.audit.decode import decode_bytes

    pipeline = Pipeline(Settings(), MemoryState(), detectors=default_detectors(PACKS))
    findings = FindingSet()
    events = decode_bytes(gzip.decompress((lab_dir / "audit.jsonl.gz").read_bytes())).events
    triggers = [*EXTRA_TRIGGERS, *(r for records in TRIGGERS.values() for r in records)]
    events += decode_bytes(b"\n".join(json.dumps(r).encode() for r in triggers)).events
    for event in events:
        for finding in pipeline.process_event(event):
            findings.add(finding)
    return {f["type"]: f for f in findings.values()}


def _signature_and_anonymous_types() -> list[str]:
    """Types one event can raise; IP callers need lists and anomalies a history (their own tests)."""
    detector_types = {t for d in default_detectors(PACKS) for t in d.finding_types}
    return sorted(t for t in detector_types if "IPCaller" not in t and "AnomalousBehavior" not in t)


def test_every_detector_type_is_in_the_catalogue():
    detector_types = {t for d in default_detectors(PACKS) for t in d.finding_types}
    assert detector_types <= set(ALL_FINDING_TYPES)


def test_extension_and_retired_types_are_marked_where_guardduty_tooling_reads_free_form_details(raised):
    """GuardDuty's model has no member for these marks; ``service.additionalInfo.value`` is its free-form JSON."""
    for finding_type, finding in raised.items():
        info = json.loads(finding["service"]["additionalInfo"]["value"])
        catalogued = CATALOGUE[finding_type]
        assert info.get("kubeguardExtension", False) is catalogued.extension, finding_type
        assert info.get("retiredFindingType", False) is catalogued.retired, finding_type
        if catalogued.extension:
            assert re.fullmatch(r"T\d{4}(\.\d{3})?", info["mitreTechnique"]) and info["mitreTechniqueName"]
            assert info.get("detectionPack", "") == catalogued.pack
    assert json.loads(raised["PrivilegeEscalation:Kubernetes/PrivilegedContainer"]["service"]["additionalInfo"][
        "value"])["retiredFindingType"] is True


@pytest.mark.parametrize("finding_type", _signature_and_anonymous_types())
def test_raised_finding_matches_the_guardduty_model(raised, finding_type):
    assert finding_type in raised, f"no trigger raised {finding_type}"
    finding = raised[finding_type]
    check(finding, "Finding")
    assert finding["schemaVersion"] == "2.0"
    assert finding["resource"]["resourceType"] == "EKSCluster"
    assert finding["service"]["featureName"] == "EKS_AUDIT_LOGS"
    assert finding["service"]["action"]["actionType"] == "KUBERNETES_API_CALL"
    assert len(finding["id"]) == 32 and int(finding["id"], 16) >= 0
    assert finding["arn"].endswith(f"/finding/{finding['id']}")
    json.loads(finding["service"]["additionalInfo"]["value"])


def _synthetic(finding_type: str) -> dict:
    """What the builder makes of a Detection carrying every optional detail a later detector may set."""
    event = _call("create", "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings", "rolebindings",
                  user="mallory", code=201, namespace="dev", name="x")
    from kubeguard.audit.decode import decode_bytes

    [audit_event] = decode_bytes(json.dumps(event).encode(), cluster="c1").events
    detection: Detection = make_detection(
        finding_type, audit_event, key="198.51.100.4", description="synthetic",
        remote_ip="198.51.100.4", parameters='{"verb":"create"}',
        workload={"name": "w", "type": "deployments", "uid": "u", "namespace": "dev", "hostNetwork": False,
                  "containers": [{"name": "c", "image": "kalilinux/kali", "imagePrefix": "kalilinux",
                                  "securityContext": {"privileged": True}}]},
        role_binding={"kind": "RoleBinding", "name": "x", "uid": "u", "roleRefName": "admin",
                      "roleRefKind": "ClusterRole"},
        role={"kind": "Role", "name": "r", "uid": "u"},
        permission_check={"verb": "create", "resource": "pods/exec", "namespace": "dev", "allowed": True},
        anomaly={"profiles": {"mallory": {"userAgent": [{"profileType": "FREQUENCY", "profileSubtype": "RARE",
                                                         "observations": {"text": ["curl/8.5.0"]}}]}},
                 "unusual": {"behavior": {"mallory": {"userAgent": {"profileType": "FREQUENCY",
                                                                    "profileSubtype": "UNSEEN",
                                                                    "observations": {"text": ["curl/8.5.0"]}}}}}},
        threat_intel=[{"threatListName": "my-list", "threatNames": ["scanner"]}],
        additional_info={"threatListName": "my-list"},
    )
    return FindingBuilder(Settings()).build(detection)


LATER_TYPES = [t for t in ALL_FINDING_TYPES if "AnomalousBehavior" in t
               or any(f"/{v}" in t for v in CALLER_VARIANTS if v != "SuccessfulAnonymousAccess")]


@pytest.mark.parametrize("finding_type", LATER_TYPES)
def test_builder_output_for_ip_caller_and_anomaly_types_matches_the_model(finding_type):
    finding = _synthetic(finding_type)
    check(finding, "Finding")
    assert finding["service"]["evidence"]["threatIntelligenceDetails"][0]["threatListName"] == "my-list"


def test_catalogue_covers_all_types():
    assert len(set(GUARDDUTY_FINDING_TYPES)) == len(GUARDDUTY_FINDING_TYPES) == 35
    assert set(_signature_and_anonymous_types()) | set(LATER_TYPES) == set(ALL_FINDING_TYPES)
    assert set(EXTENSION_FINDING_TYPES) == set(TRIGGERS)
    assert {name for name, t in CATALOGUE.items() if t.retired} == {
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer", "Persistence:Kubernetes/ContainerWithSensitiveMount"}


def test_boto3_parses_get_findings_into_typed_members(raised):
    service = ServiceModel(MODEL, service_name="guardduty")
    output = service.operation_model("GetFindings").output_shape
    body = json.dumps({"findings": list(raised.values())}).encode()
    parsed = RestJSONParser().parse({"status_code": 200, "headers": {}, "body": body}, output)
    assert len(parsed["Findings"]) == len(raised)
    by_type = {f["Type"]: f for f in parsed["Findings"]}
    privileged = by_type["PrivilegeEscalation:Kubernetes/PrivilegedContainer"]
    assert isinstance(privileged["Severity"], float) and privileged["Severity"] == 5.0
    workload = privileged["Resource"]["KubernetesDetails"]["KubernetesWorkloadDetails"]
    assert workload["Name"] == "priv-debug" and workload["HostPID"] is True
    assert workload["Containers"][0]["SecurityContext"]["Privileged"] is True
    call = privileged["Service"]["Action"]["KubernetesApiCallAction"]
    assert call["SourceIps"] == ["127.0.0.1"]
    assert call["RemoteIpDetails"]["IpAddressV4"] == "127.0.0.1"
    binding = by_type["Policy:Kubernetes/AnonymousAccessGranted"]["Service"]["Action"]
    assert binding["KubernetesRoleBindingDetails"]["RoleRefName"] == "cluster-admin"
    assert privileged["Service"]["Count"] == 1


@pytest.mark.parametrize("finding_type", ALL_FINDING_TYPES)
def test_sample_finding_of_every_type_matches_the_model_and_is_marked(finding_type):
    from kubeguard.findings.sample import sample_finding

    first, second = sample_finding(finding_type, Settings()), sample_finding(finding_type, Settings())
    check(first, "Finding")
    assert first["type"] == finding_type
    assert first["title"].startswith("[SAMPLE] ")
    assert json.loads(first["service"]["additionalInfo"]["value"])["sample"] is True
    assert first["id"] != second["id"]
    if "IPCaller" in finding_type:
        assert first["service"]["evidence"]["threatIntelligenceDetails"][0]["threatListName"]
    if "AnomalousBehavior" in finding_type:
        assert first["service"]["detection"]["anomaly"]["unusual"]["behavior"]
