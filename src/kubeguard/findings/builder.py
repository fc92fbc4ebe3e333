"""Turn a Detection into a GuardDuty Finding in its camelCase wire form.

The shape follows the GuardDuty service model (reference §2); ``tests/findings`` validates every type
kubeguard raises against botocore's copy of that model. Optional members are left out rather than sent
empty, as GuardDuty does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.detectors.base import Detection
from kubeguard.findings.aggregate import finding_id, fingerprint
from kubeguard.findings.types import CATALOGUE

FEATURE_NAME = "EKS_AUDIT_LOGS"
SCHEMA_VERSION = "2.0"

IpDescriber = Callable[[str], dict[str, Any]]


def iso_millis(timestamp: str) -> str:
    """Any RFC 3339 timestamp → ``2024-05-14T09:31:07.412Z`` (UTC, milliseconds), GuardDuty's form."""
    if len(timestamp) >= 24 and timestamp.endswith("Z") and timestamp[19] == ".":
        return timestamp[:23] + "Z"
    if not timestamp:
        return now_iso()
    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def address_only(ip: str) -> dict[str, Any]:
    """The least ``remoteIpDetails`` can say: the address, in the member for its family."""
    try:
        version = ipaddress.ip_address(ip).version
    except ValueError:
        return {}
    return {"ipAddressV6": ip} if version == 6 else {"ipAddressV4": ip}


def principal(event: AuditEvent) -> str:
    return event.user.username


class FindingBuilder:
    def __init__(self, settings: Settings, describe_ip: IpDescriber = address_only) -> None:
        self.settings = settings
        self.describe_ip = describe_ip

    def build(self, detection: Detection, *, now: str | None = None) -> dict[str, Any]:
        event = detection.event
        settings = self.settings
        fp = fingerprint(event.cluster, detection.finding_type, principal(event), detection.key)
        fid = finding_id(fp)
        seen = iso_millis(event.event_time)
        stamp = now or now_iso()
        return {
            "schemaVersion": SCHEMA_VERSION,
            "accountId": settings.account_id,
            "region": settings.region,
            "partition": settings.partition,
            "id": fid,
            "arn": (
                f"arn:{settings.partition}:guardduty:{settings.region}:{settings.account_id}:"
                f"detector/{settings.detector_id}/finding/{fid}"
            ),
            "type": detection.finding_type,
            "title": detection.title,
            "description": detection.description,
            "severity": detection.severity,
            "confidence": 0.0,
            "createdAt": stamp,
            "updatedAt": stamp,
            "resource": self._resource(detection),
            "service": self._service(detection, seen),
        }

    # -- resource -------------------------------------------------------------------------------

    def _resource(self, detection: Detection) -> dict[str, Any]:
        event = detection.event
        kubernetes: dict[str, Any] = {"kubernetesUserDetails": user_details(event)}
        if detection.workload is not None:
            kubernetes["kubernetesWorkloadDetails"] = detection.workload
        return {
            "resourceType": "EKSCluster",
            "eksClusterDetails": self._cluster_details(event.cluster),
            "kubernetesDetails": kubernetes,
        }

    def _cluster_details(self, name: str) -> dict[str, Any]:
        cluster = self.settings.cluster(name)
        details: dict[str, Any] = {"name": cluster.name, "arn": cluster.resolved_arn, "status": cluster.status}
        if cluster.vpc_id:
            details["vpcId"] = cluster.vpc_id
        if cluster.tags:
            details["tags"] = [{"key": k, "value": v} for k, v in sorted(cluster.tags.items())]
        if cluster.created_at is not None:
            details["createdAt"] = cluster.created_at
        return details

    # -- service --------------------------------------------------------------------------------

    def _service(self, detection: Detection, seen: str) -> dict[str, Any]:
        action: dict[str, Any] = {
            "actionType": "KUBERNETES_API_CALL",
            "kubernetesApiCallAction": self._api_call(detection),
        }
        if detection.role_binding is not None:
            action["kubernetesRoleBindingDetails"] = detection.role_binding
        if detection.role is not None:
            action["kubernetesRoleDetails"] = detection.role
        if detection.permission_check is not None:
            action["kubernetesPermissionCheckedDetails"] = detection.permission_check
        service: dict[str, Any] = {
            "serviceName": "guardduty",
            "detectorId": self.settings.detector_id,
            "featureName": FEATURE_NAME,
            "resourceRole": "TARGET",
            "archived": False,
            "count": 1,
            "eventFirstSeen": seen,
            "eventLastSeen": seen,
            "action": action,
            "additionalInfo": {"value": self._additional_info(detection), "type": "default"},
        }
        if detection.threat_intel:
            service["evidence"] = {"threatIntelligenceDetails": detection.threat_intel}
        if detection.anomaly is not None:
            service["detection"] = {"anomaly": detection.anomaly}
        return service

    def _api_call(self, detection: Detection) -> dict[str, Any]:
        event = detection.event
        call: dict[str, Any] = {"requestUri": event.requestURI, "verb": event.verb}
        ref = event.objectRef
        if ref is not None:
            for member, value in (
                ("resource", ref.resource),
                ("subresource", ref.subresource),
                ("namespace", ref.namespace),
                ("resourceName", ref.name),
            ):
                if value:
                    call[member] = value
        call["sourceIPs"] = list(event.sourceIPs)
        if event.userAgent:
            call["userAgent"] = event.userAgent
        if event.responseStatus is not None and event.responseStatus.code:
            call["statusCode"] = event.responseStatus.code
        if detection.parameters:
            call["parameters"] = detection.parameters
        ip = detection.remote_ip or event.caller_ip
        if ip:
            details = self.describe_ip(ip)
            if details:
                call["remoteIpDetails"] = details
        return call

    @staticmethod
    def _additional_info(detection: Detection) -> str:
        info: dict[str, Any] = {}
        if detection.event.userAgent:
            info["userAgent"] = {
                "fullUserAgent": detection.event.userAgent,
                "userAgentCategory": user_agent_category(detection.event.userAgent),
            }
        catalogued = CATALOGUE.get(detection.finding_type)
        if catalogued is not None:
            info.update(catalogued.markers())
        info.update(detection.additional_info)
        return orjson.dumps(info, option=orjson.OPT_SORT_KEYS).decode()


def user_details(event: AuditEvent) -> dict[str, Any]:
    user = event.user
    details: dict[str, Any] = {"username": user.username, "uid": user.uid, "groups": list(user.groups)}
    session = user.extras.get("sessionName")
    if session:
        details["sessionName"] = list(session)
    if event.impersonatedUser is not None:
        details["impersonatedUser"] = {
            "username": event.impersonatedUser.username,
            "groups": list(event.impersonatedUser.groups),
        }
    return details


_AGENT_CATEGORIES = (
    ("kubectl/", "KUBECTL"),
    ("python-requests/", "SCRIPT"),
    ("curl/", "SCRIPT"),
    ("Go-http-client/", "SCRIPT"),
    ("Wget/", "SCRIPT"),
    ("Mozilla/", "BROWSER"),
    ("Helm/", "TOOL"),
    ("terraform", "TOOL"),
    ("argocd", "TOOL"),
    ("kubelet/", "KUBERNETES"),
    ("kube-", "KUBERNETES"),
)


def user_agent_category(agent: str) -> str:
    for prefix, category in _AGENT_CATEGORIES:
        if agent.startswith(prefix):
            return category
    return "OTHER"
