"""The few facts every human-facing message leads with: who did what, where, how bad."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeguard.severity import label


@dataclass(frozen=True, slots=True)
class Summary:
    id: str
    type: str
    title: str
    description: str
    severity: float
    severity_label: str
    cluster: str
    principal: str
    source_ip: str
    verb: str
    request_uri: str
    count: int
    archived: bool
    first_seen: str
    last_seen: str


def summarize(finding: Mapping[str, Any]) -> Summary:
    resource = finding.get("resource") or {}
    service = finding.get("service") or {}
    call = (service.get("action") or {}).get("kubernetesApiCallAction") or {}
    user = (resource.get("kubernetesDetails") or {}).get("kubernetesUserDetails") or {}
    remote = (call.get("remoteIpDetails") or {}).get("ipAddressV4") or ""
    sources = call.get("sourceIPs") or []
    severity = _number(finding.get("severity"), 0.0)
    return Summary(
        id=str(finding.get("id", "")),
        type=str(finding.get("type", "")),
        title=str(finding.get("title", "")),
        description=str(finding.get("description", "")),
        severity=severity,
        severity_label=label(severity),
        cluster=str((resource.get("eksClusterDetails") or {}).get("name", "")),
        principal=str(user.get("username", "")),
        source_ip=str(remote or (sources[0] if sources else "")),
        verb=str(call.get("verb", "")),
        request_uri=str(call.get("requestUri", "")),
        count=int(_number(service.get("count"), 1)),
        archived=bool(service.get("archived")),
        first_seen=str(service.get("eventFirstSeen", "")),
        last_seen=str(service.get("eventLastSeen", "")),
    )


def _number(value: Any, default: float) -> float:
    """A number from the finding, or ``default`` when it is missing or not a number (never raise here:
    the publisher filters every finding through this)."""
    if isinstance(value, bool):
        return default
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
