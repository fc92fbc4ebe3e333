"""Cloud log envelopes that wrap audit events, and how to unwrap each.

Users rarely have raw kube-apiserver output on disk; they have what their cloud exported:

* **EKS via CloudWatch Logs**: each log event's ``message`` holds one audit Event as a JSON string.
  ``aws logs filter-log-events`` prints ``{"events": [{"message": ...}, ...]}``; exports and
  subscriptions give one ``{"message": ...}`` per line or ``{"logGroup": ..., "logEvents": [...]}``.
* **GKE via Cloud Logging**: a LogEntry whose ``protoPayload`` is a ``google.cloud.audit.AuditLog``
  describing the request; the Event is rebuilt from it (:mod:`kubeguard.audit.gke`).
* **AKS diagnostic settings**: ``{"category": "kube-audit", "properties": {"log": Event-or-string}}``,
  often batched as ``{"records": [...]}`` by Event Hubs and storage exports.
"""

from __future__ import annotations

import msgspec

from kubeguard.audit.event import AuditEvent


class CloudWatchLogEvent(msgspec.Struct):
    message: str = ""
    logStreamName: str = ""


class CloudWatchLine(msgspec.Struct):
    """One CloudWatch log event, or a ``filter-log-events`` response, or a subscription batch."""

    message: str | None = None
    events: list[CloudWatchLogEvent] | None = None
    logEvents: list[CloudWatchLogEvent] | None = None
    logGroup: str = ""
    logGroupName: str = ""


class AksProperties(msgspec.Struct):
    log: msgspec.Raw = msgspec.Raw(b"")


class AksRecord(msgspec.Struct):
    category: str = ""
    resourceId: str = ""
    properties: AksProperties | None = None


class AksLine(msgspec.Struct):
    """An AKS diagnostic record, or a ``{"records": [...]}`` batch of them."""

    records: list[AksRecord] | None = None
    category: str = ""
    resourceId: str = ""
    properties: AksProperties | None = None


_event_decoder = msgspec.json.Decoder(AuditEvent)
_string_decoder = msgspec.json.Decoder(str)


def eks_cluster_from_log_group(log_group: str) -> str:
    """``/aws/eks/<cluster>/cluster`` → ``<cluster>``; empty when the name has another shape."""
    parts = log_group.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "aws" and parts[1] == "eks":
        return parts[2]
    return ""


def aks_cluster_from_resource_id(resource_id: str) -> str:
    """The last segment of ``/SUBSCRIPTIONS/.../MANAGEDCLUSTERS/<name>``."""
    parts = resource_id.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].lower() == "managedclusters":
        return parts[-1].lower()
    return ""


def unwrap_cloudwatch(line: CloudWatchLine) -> tuple[list[AuditEvent], str]:
    """Events inside a CloudWatch line, and the EKS cluster named by its log group (if any)."""
    messages: list[str] = []
    if line.message is not None:
        messages.append(line.message)
    for batch in (line.events, line.logEvents):
        if batch:
            messages.extend(item.message for item in batch)
    events = [_event_decoder.decode(message) for message in messages if message]
    return events, eks_cluster_from_log_group(line.logGroup or line.logGroupName)


def _aks_event(properties: AksProperties | None) -> AuditEvent | None:
    raw = bytes(properties.log) if properties is not None else b""
    if not raw or raw == b"null":
        return None
    if raw[:1] == b'"':
        raw = _string_decoder.decode(raw).encode()
    return _event_decoder.decode(raw)


def unwrap_aks(line: AksLine) -> tuple[list[AuditEvent], str]:
    """Events inside an AKS record or batch, and the cluster named by its resource id."""
    records = line.records if line.records is not None else [
        AksRecord(category=line.category, resourceId=line.resourceId, properties=line.properties)
    ]
    events: list[AuditEvent] = []
    cluster = ""
    for record in records:
        if record.category and record.category not in ("kube-audit", "kube-audit-admin"):
            continue
        event = _aks_event(record.properties)
        if event is not None:
            events.append(event)
            cluster = cluster or aks_cluster_from_resource_id(record.resourceId)
    return events, cluster
