"""Rebuild an audit Event from a GKE Cloud Logging LogEntry.

GKE does not export the kube-apiserver's Event; it exports a ``google.cloud.audit.AuditLog`` in the
LogEntry's ``protoPayload`` that describes the same request in Google's vocabulary. The fields map back:

* ``methodName`` ``io.k8s.core.v1.pods.exec.create`` → verb ``create`` (the last segment);
* ``resourceName`` ``core/v1/namespaces/dev/pods/web/exec`` → objectRef (group, version, namespace,
  resource, name, subresource), and a request URI rebuilt from it;
* ``authenticationInfo.principalEmail`` → user.username; ``requestMetadata`` → source IP and agent;
* ``status.code`` (a google.rpc code) → an HTTP status; ``request``/``response`` → the bodies;
* ``operation.id`` → auditID; the LogEntry ``labels`` → annotations.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kubeguard.audit.event import AuditEvent, ObjectReference, ResponseStatus, UserInfo

#: google.rpc.Code → the HTTP status the API server would have logged.
_RPC_TO_HTTP = {
    0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409,
    11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}


class AuthenticationInfo(msgspec.Struct):
    principalEmail: str = ""


class RequestMetadata(msgspec.Struct):
    callerIp: str = ""
    callerSuppliedUserAgent: str = ""


class RpcStatus(msgspec.Struct):
    code: int = 0
    message: str = ""


class AuditLogPayload(msgspec.Struct):
    methodName: str = ""
    resourceName: str = ""
    serviceName: str = ""
    authenticationInfo: AuthenticationInfo = msgspec.field(default_factory=AuthenticationInfo)
    requestMetadata: RequestMetadata = msgspec.field(default_factory=RequestMetadata)
    status: RpcStatus | None = None
    request: msgspec.Raw = msgspec.Raw(b"")
    response: msgspec.Raw = msgspec.Raw(b"")


class MonitoredResource(msgspec.Struct):
    type: str = ""
    labels: dict[str, str] = {}


class Operation(msgspec.Struct):
    id: str = ""


class LogEntry(msgspec.Struct):
    protoPayload: AuditLogPayload | None = None
    resource: MonitoredResource = msgspec.field(default_factory=MonitoredResource)
    operation: Operation = msgspec.field(default_factory=Operation)
    labels: dict[str, str] = {}
    timestamp: str = ""
    insertId: str = ""


def parse_resource_name(resource_name: str) -> ObjectReference:
    """``apps/v1/namespaces/dev/deployments/web/scale`` → the parts of an objectRef."""
    parts = [part for part in resource_name.split("/") if part]
    if len(parts) < 3:
        return ObjectReference()
    group = "" if parts[0] == "core" else parts[0]
    version, rest = parts[1], parts[2:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource == "namespaces" and name and not namespace:
        namespace = name
    return ObjectReference(
        resource=resource, namespace=namespace, name=name, subresource=subresource,
        apiGroup=group, apiVersion=version,
    )


def request_uri(ref: ObjectReference, resource_name: str, verb: str) -> str:
    """The URI the client most likely called, rebuilt from the objectRef."""
    if not ref.resource:
        return "/" + resource_name.strip("/")
    prefix = f"/apis/{ref.apiGroup}/{ref.apiVersion}" if ref.apiGroup else f"/api/{ref.apiVersion}"
    path = prefix
    if ref.namespace and ref.resource != "namespaces":
        path += f"/namespaces/{ref.namespace}"
    path += f"/{ref.resource}"
    if ref.name and verb != "create" or ref.subresource:
        path += f"/{ref.name}"
    if ref.subresource:
        path += f"/{ref.subresource}"
    return path


def _http_status(status: RpcStatus | None, verb: str) -> ResponseStatus:
    if status is None or status.code == 0:
        return ResponseStatus(code=201 if verb == "create" else 200)
    code = status.code if status.code >= 100 else _RPC_TO_HTTP.get(status.code, 500)
    return ResponseStatus(code=code, message=status.message)


def event_from_log_entry(entry: LogEntry) -> tuple[AuditEvent | None, str]:
    """The Event a LogEntry describes (None if it is not a k8s.io audit entry), and its cluster."""
    payload = entry.protoPayload
    if payload is None or (payload.serviceName and payload.serviceName != "k8s.io"):
        return None, ""
    verb = payload.methodName.rsplit(".", 1)[-1] if payload.methodName else ""
    ref = parse_resource_name(payload.resourceName)
    caller_ip = payload.requestMetadata.callerIp
    event = AuditEvent(
        auditID=entry.operation.id or entry.insertId,
        stage="ResponseComplete",
        verb=verb,
        requestURI=request_uri(ref, payload.resourceName, verb),
        user=UserInfo(username=payload.authenticationInfo.principalEmail),
        sourceIPs=[caller_ip] if caller_ip else [],
        userAgent=payload.requestMetadata.callerSuppliedUserAgent,
        objectRef=ref if ref.resource else None,
        responseStatus=_http_status(payload.status, verb),
        requestObject=payload.request,
        responseObject=payload.response,
        annotations=msgspec.Raw(msgspec.json.encode(entry.labels)),
        stageTimestamp=entry.timestamp,
    )
    return event, entry.resource.labels.get("cluster_name", "")


def looks_like_log_entry(document: dict[str, Any]) -> bool:
    return "protoPayload" in document
