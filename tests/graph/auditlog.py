"""Building the small hand-counted audit logs of the graph tests."""

from __future__ import annotations

from typing import Any

from conftest import build_event


def event(
    clock: str,
    *,
    user: str,
    ip: str,
    agent: str,
    verb: str,
    resource: str,
    code: int,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    body: dict[str, Any] | None = None,
    stage: str = "ResponseComplete",
    day: str = "2026-11-20",
    cluster: str = "lab",
):
    """One audit event at ``day`` ``clock`` (HH:MM, UTC) in ``cluster``."""
    path = f"/api/v1/namespaces/{namespace}/{resource}" if namespace else f"/api/v1/{resource}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    document: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"{day}-{clock}-{user}-{verb}-{resource}",
        "stage": stage,
        "verb": verb,
        "requestURI": path + "?limit=500",
        "user": {"username": user, "groups": ["developers", "system:authenticated"]},
        "sourceIPs": [ip],
        "userAgent": agent,
        "objectRef": {"resource": resource, "namespace": namespace, "name": name, "subresource": subresource},
        "responseStatus": {"code": code},
        "stageTimestamp": f"{day}T{clock}:00.000000Z",
        "requestReceivedTimestamp": f"{day}T{clock}:00.000000Z",
    }
    if body is not None:
        document["requestObject"] = body
        document["responseObject"] = body
    return build_event(document, cluster=cluster)
