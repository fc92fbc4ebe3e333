"""OCSF Detection Finding (class 2004), the shape Amazon Security Lake stores GuardDuty findings in.

Mapping: the GuardDuty finding type is the analytic and ``finding_info.types``; its tactic becomes a MITRE
ATT&CK tactic in ``finding_info.attacks``; the cluster is a resource; the API call, its caller
(``actor.user``) and their address (``src_endpoint``) are the evidence. The activity is Create for a
finding seen once, Update for a later occurrence and Close once it is archived (OCSF status Resolved).
Severity ids follow OCSF: Low 2, Medium 3, High 4, Critical 5. The whole GuardDuty finding rides along
in ``unmapped`` so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeguard.findings.criteria import epoch_ms
from kubeguard.findings.formats.summary import summarize

OCSF_VERSION = "1.5.0"
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE, ACTIVITY_UPDATE, ACTIVITY_CLOSE = 1, 2, 3
_ACTIVITY_NAMES = {ACTIVITY_CREATE: "Create", ACTIVITY_UPDATE: "Update", ACTIVITY_CLOSE: "Close"}
_SEVERITY_IDS = {"Low": 2, "Medium": 3, "High": 4, "Critical": 5}
_MITRE_TACTICS = {
    "InitialAccess": ("TA0001", "Initial Access"),
    "Execution": ("TA0002", "Execution"),
    "Persistence": ("TA0003", "Persistence"),
    "PrivilegeEscalation": ("TA0004", "Privilege Escalation"),
    "DefenseEvasion": ("TA0005", "Defense Evasion"),
    "CredentialAccess": ("TA0006", "Credential Access"),
    "Discovery": ("TA0007", "Discovery"),
    "Impact": ("TA0040", "Impact"),
}


def ocsf_finding(finding: Mapping[str, Any], link: str = "", product_version: str = "") -> dict[str, Any]:
    facts = summarize(finding)
    activity = ACTIVITY_CLOSE if facts.archived else ACTIVITY_UPDATE if facts.count > 1 else ACTIVITY_CREATE
    resource = finding.get("resource") or {}
    cluster = resource.get("eksClusterDetails") or {}
    service = finding.get("service") or {}
    call = (service.get("action") or {}).get("kubernetesApiCallAction") or {}
    user = (resource.get("kubernetesDetails") or {}).get("kubernetesUserDetails") or {}
    info: dict[str, Any] = {
        "uid": facts.id,
        "title": facts.title or facts.type,
        "desc": facts.description,
        "types": [facts.type],
        "created_time": _ms(finding.get("createdAt")),
        "modified_time": _ms(finding.get("updatedAt")),
        "first_seen_time": _ms(facts.first_seen),
        "last_seen_time": _ms(facts.last_seen),
        "analytic": {"uid": facts.type, "name": facts.type, "type_id": 1, "type": "Rule"},
    }
    if link:
        info["src_url"] = link
    tactic = _MITRE_TACTICS.get(facts.type.split(":", 1)[0])
    if tactic:
        info["attacks"] = [{"tactic": {"uid": tactic[0], "name": tactic[1]}, "version": "14.1"}]
    document: dict[str, Any] = {
        "activity_id": activity,
        "activity_name": _ACTIVITY_NAMES[activity],
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"Detection Finding: {_ACTIVITY_NAMES[activity]}",
        "severity_id": _SEVERITY_IDS[facts.severity_label],
        "severity": facts.severity_label,
        "status_id": 4 if facts.archived else 1,
        "status": "Resolved" if facts.archived else "New",
        "time": _ms(finding.get("updatedAt")) or _ms(facts.last_seen),
        "message": facts.description or facts.title,
        "count": facts.count,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": facts.id,
            "profiles": ["cloud"],
            "product": {
                "name": "kubeguard",
                "vendor_name": "kubeguard",
                "version": product_version or _package_version(),
                "feature": {"name": str(service.get("featureName") or "EKS_AUDIT_LOGS")},
            },
        },
        "finding_info": _compact(info),
        "cloud": {
            "provider": "AWS",
            "region": str(finding.get("region") or ""),
            "account": {
                "uid": str(finding.get("accountId") or ""),
                "name": str(finding.get("accountId") or ""),
                "type_id": 10,
                "type": "AWS Account",
            },
        },
        "resources": [
            _compact(
                {
                    "uid": str(cluster.get("arn") or f"urn:kubeguard:cluster:{facts.cluster}"),
                    "name": facts.cluster,
                    "type": "Kubernetes Cluster",
                    "cloud_partition": str(finding.get("partition") or "aws"),
                    "region": str(finding.get("region") or ""),
                }
            )
        ],
        "unmapped": {"guardduty": dict(finding)},
    }
    if call or user or facts.source_ip:
        document["evidences"] = [_evidence(call, user, facts.source_ip)]
    return document


def _user(user: Mapping[str, Any]) -> dict[str, Any]:
    return _compact(
        {
            "name": str(user.get("username", "")),
            "uid": str(user.get("uid", "")),
            "groups": [{"name": str(group)} for group in user.get("groups") or []],
        }
    )


def _evidence(call: Mapping[str, Any], user: Mapping[str, Any], source_ip: str) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "api": _compact(
            {
                "operation": str(call.get("verb", "")),
                "response": {"code": call["statusCode"]} if isinstance(call.get("statusCode"), int) else {},
            }
        ),
    }
    if call.get("requestUri"):
        evidence["url"] = {"path": str(call["requestUri"])}
    if source_ip:
        evidence["src_endpoint"] = {"ip": source_ip}
    if user:
        evidence["actor"] = {"user": _user(user)}
    return evidence


def _ms(timestamp: Any) -> int | None:
    if not isinstance(timestamp, str) or not timestamp:
        return None
    value = epoch_ms(timestamp)
    return value if isinstance(value, int) else None


def _compact(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value not in (None, "", [], {})}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubeguard")
    except PackageNotFoundError:
        return "0"
