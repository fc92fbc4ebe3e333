"""Seed corpora for the fuzz targets, written from the repository's own test data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "lab-scenario"
LISTS = (
    b"198.51.100.0/24\n203.0.113.7\n# comment\n2001:db8::/32\n",
    b"ExitNode 0011\nPublished 2024-01-01 00:00:00\nExitAddress 203.0.113.9 2024-01-01 00:00:00\n",
    b"Indicator type,Indicator\nIPv4,203.0.113.7\n",
    b'{"type": "bundle", "objects": [{"type": "indicator", "pattern": "[ipv4-addr:value = \'203.0.113.7\']"}]}',
    b"<stix:STIX_Package><cybox:Properties><AddressObj:Address_Value>203.0.113.7</AddressObj:Address_Value>"
    b"</cybox:Properties></stix:STIX_Package>",
)


def _lab_events(count: int) -> list[dict]:
    with gzip.open(DATA / "audit.jsonl.gz") as lines:
        return [json.loads(line) for _, line in zip(range(count), lines, strict=False)]


def write_seeds(target: str, directory: Path) -> Path:
    """Fill ``directory`` with a handful of valid inputs for ``target``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    events = _lab_events(400)
    interesting = [e for e in events if e.get("requestObject") or e.get("objectRef", {}).get("subresource")][:12]
    samples: list[bytes]
    if target in ("auto", "native", "pipeline"):
        samples = [json.dumps(e).encode() for e in interesting]
        samples.append(json.dumps({"kind": "EventList", "items": interesting[:4]}).encode())
    elif target == "cloudwatch":
        samples = [json.dumps({"logGroup": "/aws/eks/lab/cluster", "logStream": "kube-apiserver-audit-1",
                               "logEvents": [{"id": "1", "timestamp": 1, "message": json.dumps(e)}]}).encode()
                   for e in interesting[:6]]
    elif target == "gke":
        samples = [json.dumps({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                                                "methodName": "io.k8s.core.v1.pods.create",
                                                "authenticationInfo": {"principalEmail": "a@example.com"},
                                                "resourceName": "core/v1/namespaces/dev/pods/p"},
                               "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "lab"}},
                               "timestamp": "2026-01-01T00:00:00Z", "insertId": str(i)}).encode()
                   for i in range(3)]
    elif target == "aks":
        samples = [json.dumps({"records": [{"category": "kube-audit", "properties": {"log": json.dumps(e)}}]})
                   .encode() for e in interesting[:6]]
    elif target == "threat-list":
        samples = [bytes([index]) + body for index, body in enumerate(LISTS)]
    elif target == "gzip-body":
        samples = [gzip.compress(json.dumps(e).encode()) for e in interesting[:4]]
    else:
        samples = [b'{"severity": {"gte": 4}, "type": {"eq": ["x"]}}', b'{"service.archived": {"eq": ["false"]}}']
    for number, sample in enumerate(samples):
        (directory / f"seed-{number}").write_bytes(sample)
    return directory
