"""The entities a finding involves: who acted (actors), on what (resources), from where (endpoints).

Correlation links findings that share one of these. The keys are plain strings so they can be compared,
hashed and stored; the wire objects (GuardDuty's ``Actor``, ``ResourceV2``, ``NetworkEndpoint``) are built
from the same findings in :mod:`kubeguard.correlate.sequences`.

A Kubernetes subject's entity ARN is ``arn:kubeguard:kubernetes:::cluster/<cluster>/subject/<username>``
(Detective has no ARN for Kubernetes subjects; this one follows the ARN grammar so it travels through
Detective's ``EntityArn`` members unchanged).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SUBJECT_ARN_PREFIX = "arn:kubeguard:kubernetes:::cluster/"

#: GuardDuty's KubernetesResourcesTypes for the workload kinds the detectors report.
WORKLOAD_TYPES = {
    "pods": "PODS",
    "jobs": "JOBS",
    "cronjobs": "CRONJOBS",
    "deployments": "DEPLOYMENTS",
    "daemonsets": "DAEMONSETS",
    "statefulsets": "STATEFULSETS",
    "replicasets": "REPLICASETS",
    "replicationcontrollers": "REPLICATIONCONTROLLERS",
}


def subject_arn(cluster: str, username: str) -> str:
    return f"{SUBJECT_ARN_PREFIX}{cluster}/subject/{username}"


def parse_subject_arn(arn: str) -> tuple[str, str] | None:
    """(cluster, username) from a subject ARN, or None when ``arn`` is not one."""
    if not arn.startswith(SUBJECT_ARN_PREFIX):
        return None
    cluster, separator, username = arn[len(SUBJECT_ARN_PREFIX):].partition("/subject/")
    if not separator or not cluster or not username:
        return None
    return cluster, username


def workload_uid(cluster: str, namespace: str, kind: str, name: str) -> str:
    return f"{SUBJECT_ARN_PREFIX}{cluster}/namespace/{namespace}/{kind}/{name}"


@lru_cache(maxsize=4096)
def is_public(ip: str) -> bool:
    """Only public addresses link findings: node, pod and NAT addresses are shared by unrelated callers."""
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


@dataclass(slots=True, frozen=True)
class Entities:
    cluster: str
    username: str
    session: str
    actor: str
    workloads: tuple[tuple[str, str, str], ...]  # (namespace, kind, name)
    addresses: tuple[str, ...]

    @property
    def link_keys(self) -> list[str]:
        """Keys that relate this finding to others: its actor, its workloads and its public addresses."""
        keys = [f"actor:{self.actor}"]
        keys.extend(f"workload:{ns}/{kind}/{name}" for ns, kind, name in self.workloads)
        keys.extend(f"ip:{ip}" for ip in self.addresses if is_public(ip))
        return keys


def cluster_of(finding: dict[str, Any]) -> str:
    return ((finding.get("resource") or {}).get("eksClusterDetails") or {}).get("name", "")


def user_of(finding: dict[str, Any]) -> dict[str, Any]:
    details = (finding.get("resource") or {}).get("kubernetesDetails") or {}
    return details.get("kubernetesUserDetails") or {}


def api_call_of(finding: dict[str, Any]) -> dict[str, Any]:
    action = (finding.get("service") or {}).get("action") or {}
    return action.get("kubernetesApiCallAction") or {}


def entities_of(finding: dict[str, Any]) -> Entities:
    """The entities of one finding.

    The actor is the username plus the session name when EKS logs one: many people share one IAM role,
    and so one username, but each keeps their own session name.
    """
    user = user_of(finding)
    username = user.get("username", "")
    sessions = user.get("sessionName") or []
    session = sessions[0] if sessions else ""
    actor = f"{username}#{session}" if session else username
    details = (finding.get("resource") or {}).get("kubernetesDetails") or {}
    workloads: list[tuple[str, str, str]] = []
    workload = details.get("kubernetesWorkloadDetails")
    if workload and workload.get("name"):
        workloads.append((workload.get("namespace", ""), workload.get("type", ""), workload["name"]))
    call = api_call_of(finding)
    if call.get("resource") == "pods" and call.get("resourceName") and call.get("subresource"):
        workloads.append((call.get("namespace", ""), "pods", call["resourceName"]))
    addresses = tuple(dict.fromkeys(call.get("sourceIPs") or ()))
    return Entities(cluster_of(finding), username, session, actor, tuple(workloads), addresses)
