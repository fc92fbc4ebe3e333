"""The lab log wrapped the way each cloud exports kube-apiserver audit events.

Each builder takes the lab's Events (dicts, as the API server wrote them) and returns the bytes a user
would have on disk after exporting them from that cloud.
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import urlsplit

Record = dict[str, Any]

EKS_LOG_GROUP = "/aws/eks/lab-eks/cluster"
AKS_RESOURCE_ID = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/LAB-RG/PROVIDERS/"
    "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/LAB-AKS"
)
GKE_CLUSTER = "lab-gke"


def _millis(index: int) -> int:
    return 1_795_000_000_000 + index


def _compact(record: Record) -> str:
    return json.dumps(record, separators=(",", ":"))


# -- EKS through CloudWatch Logs ------------------------------------------------------------------

def _log_event(index: int, record: Record) -> Record:
    return {"logStreamName": "kube-apiserver-audit-5f2d8c1b9e7a4d3c", "timestamp": _millis(index),
            "message": _compact(record), "ingestionTime": _millis(index) + 900,
            "eventId": f"3{index:055d}"}


def cloudwatch_filter_response(records: list[Record]) -> bytes:
    """``aws logs filter-log-events --log-group-name /aws/eks/NAME/cluster`` output (pretty-printed)."""
    document = {
        "events": [_log_event(i, r) for i, r in enumerate(records)],
        "searchedLogStreams": [{"logStreamName": "kube-apiserver-audit-5f2d8c1b9e7a4d3c",
                                "searchedCompletely": True}],
    }
    return json.dumps(document, indent=4).encode()


def cloudwatch_message_lines(records: list[Record]) -> bytes:
    """An export with one ``{"timestamp": ..., "message": ...}`` object per line."""
    return b"".join(
        json.dumps({"timestamp": _millis(i), "message": _compact(r)}).encode() + b"\n"
        for i, r in enumerate(records)
    )


def cloudwatch_subscription(records: list[Record], batch: int = 100) -> bytes:
    """Subscription-filter deliveries (Firehose/Lambda), one gunzipped batch per line."""
    lines = []
    for start in range(0, len(records), batch):
        lines.append(json.dumps({
            "messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": EKS_LOG_GROUP,
            "logStream": "kube-apiserver-audit-5f2d8c1b9e7a4d3c", "subscriptionFilters": ["to-kubeguard"],
            "logEvents": [{"id": f"{start + i}", "timestamp": _millis(start + i), "message": _compact(r)}
                          for i, r in enumerate(records[start:start + batch])],
        }).encode())
    return b"\n".join(lines) + b"\n"


# -- GKE through Cloud Logging --------------------------------------------------------------------

#: HTTP status → google.rpc.Code, as GKE's audit logging translates them.
_HTTP_TO_RPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 422: 3, 429: 8, 500: 13, 503: 14, 504: 4}


def _gke_resource_name(record: Record) -> str:
    ref = record.get("objectRef")
    if not ref or not ref.get("resource"):
        return urlsplit(record["requestURI"]).path.strip("/")
    parts = [ref.get("apiGroup") or "core", ref.get("apiVersion", "v1")]
    if ref.get("namespace") and ref["resource"] != "namespaces":
        parts += ["namespaces", ref["namespace"]]
    parts.append(ref["resource"])
    if ref.get("name"):
        parts.append(ref["name"])
    if ref.get("subresource"):
        parts.append(ref["subresource"])
    return "/".join(parts)


def _gke_method(record: Record) -> str:
    ref = record.get("objectRef")
    if not ref or not ref.get("resource"):
        return f"io.k8s.{record['verb']}"
    group = ref.get("apiGroup") or "core"
    resource = ref["resource"] + (f".{ref['subresource']}" if ref.get("subresource") else "")
    return f"io.k8s.{group}.{ref.get('apiVersion', 'v1')}.{resource}.{record['verb']}"


def _gke_body(body: Record | None, kind_type: str) -> Record | None:
    if not body:
        return None
    return {"@type": kind_type, **body}


def gke_log_entry(record: Record) -> Record:
    ref = record.get("objectRef") or {}
    code = record.get("responseStatus", {}).get("code", 200)
    status: Record = {"code": 0} if code < 300 else {
        "code": _HTTP_TO_RPC.get(code, 2), "message": record["responseStatus"].get("reason", "")
    }
    kind_type = f"{ref.get('apiGroup') or 'core'}.k8s.io/{ref.get('apiVersion', 'v1')}.{ref.get('resource', '')}"
    payload: Record = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": record["user"].get("username", "")},
        "authorizationInfo": [{"granted": record.get("annotations", {}).get("authorization.k8s.io/decision")
                               == "allow", "permission": _gke_method(record),
                               "resource": _gke_resource_name(record)}],
        "methodName": _gke_method(record),
        "requestMetadata": {"callerIp": (record.get("sourceIPs") or [""])[0],
                            "callerSuppliedUserAgent": record.get("userAgent", "")},
        "resourceName": _gke_resource_name(record),
        "serviceName": "k8s.io",
        "status": status,
    }
    request = _gke_body(record.get("requestObject"), kind_type)
    response = _gke_body(record.get("responseObject"), kind_type)
    if request is not None:
        payload["request"] = request
    if response is not None:
        payload["response"] = response
    return {
        "protoPayload": payload,
        "insertId": f"{record['auditID']}-{record['stage']}",
        "resource": {"type": "k8s_cluster", "labels": {"project_id": "lab-project", "location": "europe-west1",
                                                         "cluster_name": GKE_CLUSTER}},
        "timestamp": record.get("stageTimestamp", ""),
        "severity": "NOTICE",
        "labels": dict(record.get("annotations", {})),
        "logName": "projects/lab-project/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"id": record["auditID"], "producer": "k8s.io",
                      "first": record["stage"] != "ResponseComplete", "last": record["stage"] == "ResponseComplete"},
        "receiveTimestamp": record.get("stageTimestamp", ""),
    }


def gke_entries(records: list[Record]) -> bytes:
    """``gcloud logging read --format=json``-style JSONL, one LogEntry per line."""
    return b"".join(json.dumps(gke_log_entry(r)).encode() + b"\n" for r in records)


# -- AKS diagnostic settings ----------------------------------------------------------------------

def aks_record(record: Record, *, log_as_string: bool) -> Record:
    return {
        "time": record.get("stageTimestamp", ""), "category": "kube-audit",
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "resourceId": AKS_RESOURCE_ID,
        "properties": {"log": _compact(record) if log_as_string else record, "stream": "stdout",
                       "pod": "kube-apiserver-7b5d9c8f6-abcde", "containerID": "0" * 64},
    }


def aks_lines(records: list[Record], *, log_as_string: bool) -> bytes:
    return b"".join(json.dumps(aks_record(r, log_as_string=log_as_string)).encode() + b"\n" for r in records)


def aks_batches(records: list[Record], batch: int = 250) -> bytes:
    """Event Hubs / storage-account export: ``{"records": [...]}`` documents, one per line, gzip."""
    lines = [
        json.dumps({"records": [aks_record(r, log_as_string=True) for r in records[s:s + batch]]}).encode()
        for s in range(0, len(records), batch)
    ]
    return gzip.compress(b"\n".join(lines) + b"\n")
