"""AWS Security Finding Format (ASFF) for Security Hub ``BatchImportFindings``.

kubeguard imports as a custom product (``product/{account}/default``): Security Hub refuses the
``aws/guardduty`` product ARN from anything but GuardDuty. Otherwise the finding reads as GuardDuty's own
EKS findings do in Security Hub: the type becomes a ``TTPs/<tactic>/<Type>`` classifier (``/`` in the
GuardDuty type becomes ``-``), the cluster is an ``AwsEksCluster`` resource, the workload's containers are
``Container`` resources, and the Kubernetes details go into ``ProductFields`` under GuardDuty's
``aws/guardduty/service/...`` keys (flattened, strings, at most 50 as Security Hub allows).

Every ASFF string must be non-empty (``NonEmptyString`` in the model), so empty values are left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kubeguard.findings.formats.summary import summarize

SCHEMA_VERSION = "2018-10-08"
MAX_PRODUCT_FIELDS = 50
MAX_TITLE = 256
MAX_DESCRIPTION = 1024
MAX_FIELD_VALUE = 2048

_TACTIC_CATEGORIES = {
    "CredentialAccess": "TTPs/Credential Access",
    "DefenseEvasion": "TTPs/Defense Evasion",
    "Discovery": "TTPs/Discovery",
    "Execution": "TTPs/Execution",
    "Impact": "TTPs/Impact",
    "InitialAccess": "TTPs/Initial Access",
    "Persistence": "TTPs/Persistence",
    "PrivilegeEscalation": "TTPs/Privilege Escalation",
    "Policy": "Software and Configuration Checks/Policy",
}
#: Wire paths whose leaves become ProductFields, most useful first (the list is cut at 50 fields).
_PRODUCT_FIELD_ROOTS = (
    ("service", "action"),
    ("resource", "kubernetesDetails"),
    ("service", "evidence"),
)


def asff_type(finding_type: str) -> str:
    tactic = finding_type.split(":", 1)[0]
    category = _TACTIC_CATEGORIES.get(tactic, "Unusual Behaviors/Application")
    return f"{category}/{finding_type.replace('/', '-')}"


def asff_finding(finding: Mapping[str, Any], link: str = "") -> dict[str, Any]:
    facts = summarize(finding)
    account = str(finding.get("accountId") or "000000000000")
    region = str(finding.get("region") or "us-east-1")
    partition = str(finding.get("partition") or "aws")
    label = facts.severity_label.upper()
    types = [asff_type(facts.type)]
    document: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": str(finding.get("arn") or facts.id),
        "ProductArn": f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default",
        "ProductName": "kubeguard",
        "CompanyName": "kubeguard",
        "Region": region,
        "GeneratorId": f"kubeguard/{facts.type}",
        "AwsAccountId": account,
        "Types": types,
        "CreatedAt": str(finding.get("createdAt")),
        "UpdatedAt": str(finding.get("updatedAt")),
        "Severity": {"Label": label, "Normalized": round(facts.severity * 10), "Original": f"{facts.severity:g}"},
        "Title": _cut(facts.title or facts.type, MAX_TITLE),
        "Description": _cut(facts.description or facts.title or facts.type, MAX_DESCRIPTION),
        "ProductFields": product_fields(finding),
        "Resources": resources(finding, partition, region),
        "Workflow": {"Status": "RESOLVED" if facts.archived else "NEW"},
        "RecordState": "ARCHIVED" if facts.archived else "ACTIVE",
        "FindingProviderFields": {"Severity": {"Label": label, "Original": f"{facts.severity:g}"}, "Types": types},
    }
    if facts.first_seen:
        document["FirstObservedAt"] = facts.first_seen
    if facts.last_seen:
        document["LastObservedAt"] = facts.last_seen
    if link:
        document["SourceUrl"] = link
    if facts.source_ip:
        document["Network"] = {"Direction": "IN", _ip_field(facts.source_ip): facts.source_ip}
    return document


def product_fields(finding: Mapping[str, Any]) -> dict[str, str]:
    service = finding.get("service") or {}
    fields = {
        "aws/guardduty/service/detectorId": service.get("detectorId"),
        "aws/guardduty/service/count": service.get("count"),
        "aws/guardduty/service/archived": service.get("archived"),
        "aws/guardduty/service/featureName": service.get("featureName"),
        "kubeguard/findingId": finding.get("id"),
        "kubeguard/type": finding.get("type"),
    }
    kept = {key: _text(value) for key, value in fields.items() if _text(value)}
    for root in _PRODUCT_FIELD_ROOTS:
        node: Any = finding
        for step in root:
            node = node.get(step) if isinstance(node, Mapping) else None
        prefix = "aws/guardduty/" + "/".join(root)
        for key, value in _leaves(node, prefix):
            if len(kept) >= MAX_PRODUCT_FIELDS:
                return kept
            if (text := _text(value)) and key not in kept:
                kept[key] = _cut(text, MAX_FIELD_VALUE)
    return kept


def resources(finding: Mapping[str, Any], partition: str, region: str) -> list[dict[str, Any]]:
    resource = finding.get("resource") or {}
    cluster = resource.get("eksClusterDetails") or {}
    name = str(cluster.get("name") or "unknown")
    arn = str(cluster.get("arn") or f"urn:kubeguard:cluster:{name}")
    eks = {"Name": name, "Arn": arn, "ClusterStatus": cluster.get("status")}
    items: list[dict[str, Any]] = [
        {
            "Type": "AwsEksCluster",
            "Id": arn,
            "Partition": partition,
            "Region": region,
            "ResourceRole": "Target",
            **({"Tags": tags} if (tags := _tags(cluster.get("tags"))) else {}),
            "Details": {"AwsEksCluster": _non_empty(eks)},
        }
    ]
    workload = (resource.get("kubernetesDetails") or {}).get("kubernetesWorkloadDetails") or {}
    for container in workload.get("containers") or []:
        mounts = [
            _non_empty({"Name": m.get("name"), "MountPath": m.get("mountPath")})
            for m in container.get("volumeMounts") or []
        ]
        details = {
            "Name": container.get("name"),
            "ImageName": container.get("image"),
            "ImageId": container.get("imagePrefix"),
            "VolumeMounts": [m for m in mounts if m],
        }
        if (context := container.get("securityContext") or {}).get("privileged") is not None:
            details["Privileged"] = bool(context["privileged"])
        path = "/".join(str(p) for p in (workload.get("namespace"), workload.get("name"), container.get("name")) if p)
        items.append(
            {
                "Type": "Container",
                "Id": f"{arn}/{path}",
                "Partition": partition,
                "Region": region,
                "Details": {"Container": _non_empty(details)},
            }
        )
    return items


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}/{key}")
    elif isinstance(node, list):
        if all(not isinstance(item, Mapping | list) for item in node):
            yield prefix, ",".join(_text(item) for item in node)
        else:
            for index, item in enumerate(node):
                yield from _leaves(item, f"{prefix}/{index}")
    else:
        yield prefix, node


def _tags(tags: Any) -> dict[str, str]:
    if isinstance(tags, Mapping):
        pairs = tags.items()
    else:
        pairs = ((t.get("key"), t.get("value")) for t in tags or [] if isinstance(t, Mapping))
    return {str(k): str(v) for k, v in pairs if _text(k) and _text(v)}


def _non_empty(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value not in (None, "", [], {}) and _has_text(value)}


def _has_text(value: Any) -> bool:
    return not isinstance(value, str) or bool(value.strip())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text.strip() else ""


def _ip_field(address: str) -> str:
    return "SourceIpV6" if ":" in address else "SourceIpV4"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
