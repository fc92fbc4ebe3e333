"""Entity kinds of the behaviour graph, their keys, and the entities a finding names.

Keys are the names an investigator types or links to, independent of the cluster (which is an attribute
and a roll-up dimension): a subject is its username, a pod ``namespace/name``, an image its reference
(slashes and all), a workload ``namespace/kind/name``, a namespace ``cluster/namespace``.
"""

from __future__ import annotations

from typing import Any

CLUSTER = "cluster"
NAMESPACE = "namespace"
SUBJECT = "subject"
POD = "pod"
WORKLOAD = "workload"
IMAGE = "image"
IP = "ip"
ASN = "asn"
USER_AGENT = "useragent"
FINDING = "finding"

#: Kinds with a profile page, in the order the search lists them.
ENTITY_KINDS = (CLUSTER, SUBJECT, IP, POD, IMAGE, WORKLOAD, NAMESPACE, USER_AGENT, ASN)

#: Longest key kept; longer values (user agents, odd request paths) are cut, which keeps them readable.
MAX_KEY = 256

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def pod_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def namespace_key(cluster: str, namespace: str) -> str:
    return f"{cluster}/{namespace}"


def workload_key(namespace: str, kind: str, name: str) -> str:
    return f"{namespace}/{kind}/{name}"


def service_account(namespace: str, name: str) -> str:
    """The username a pod's service account authenticates as."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name or 'default'}"


def outcome(code: int) -> str:
    """Detective's outcome of an API call: successful, failed, unauthorized (401) or forbidden (403)."""
    if 200 <= code < 300 or code == 101:
        return "success"
    if code == 401:
        return "unauthorized"
    if code == 403:
        return "forbidden"
    return "failed" if code else "unknown"


OUTCOMES = ("success", "failed", "unauthorized", "forbidden", "unknown")


def finding_entities(finding: dict[str, Any]) -> list[tuple[str, str]]:
    """Every entity a GuardDuty finding names: cluster, subject, IPs, ASN, user agent, namespace, pod or
    workload, images. The console's graph and "related findings" follow these."""
    found: dict[tuple[str, str], None] = {}
    resource = finding.get("resource") or {}
    cluster = (resource.get("eksClusterDetails") or {}).get("name") or ""
    if cluster:
        found[(CLUSTER, cluster)] = None
    details = resource.get("kubernetesDetails") or {}
    user = (details.get("kubernetesUserDetails") or {}).get("username") or ""
    if user:
        found[(SUBJECT, user)] = None
    action = ((finding.get("service") or {}).get("action") or {}).get("kubernetesApiCallAction") or {}
    for address in action.get("sourceIPs") or []:
        found[(IP, address)] = None
    remote = action.get("remoteIpDetails") or {}
    address = remote.get("ipAddressV4") or remote.get("ipAddressV6")
    if address:
        found[(IP, address)] = None
    asn = (remote.get("organization") or {}).get("asn") or ""
    if asn and asn != "0":
        found[(ASN, asn)] = None
    agent = action.get("userAgent") or ""
    if agent:
        found[(USER_AGENT, agent[:MAX_KEY])] = None
    workload = details.get("kubernetesWorkloadDetails") or {}
    namespace = workload.get("namespace") or action.get("namespace") or ""
    if cluster and namespace:
        found[(NAMESPACE, namespace_key(cluster, namespace))] = None
    if workload.get("name"):
        if workload.get("type") == "pods":
            found[(POD, pod_key(namespace, workload["name"]))] = None
        else:
            found[(WORKLOAD, workload_key(namespace, workload.get("type", ""), workload["name"]))] = None
    for container in workload.get("containers") or []:
        if container.get("image"):
            found[(IMAGE, container["image"])] = None
    if action.get("resource") == "pods" and action.get("resourceName") and namespace and not workload:
        found[(POD, pod_key(namespace, action["resourceName"]))] = None
    return list(found)
