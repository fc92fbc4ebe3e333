"""Sample findings (CreateSampleFindings): one realistic finding of any type, clearly marked as a sample.

Each sample is built by the real finding builder from a made-up API call and the details its type
carries (a workload, a role binding, threat intelligence, an anomaly explanation), so a sample looks
exactly like what the detector would raise and exercises the same tooling. Samples are titled
``[SAMPLE] ...``, carry ``additionalInfo.sample = true``, and get a fresh id each time, as GuardDuty's do.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.detectors.common import make_detection
from kubeguard.findings.builder import FindingBuilder, now_iso
from kubeguard.findings.types import get as finding_type

SAMPLE_CLUSTER = "sample-cluster"
SAMPLE_IP = "198.51.100.23"


def _call(finding: str) -> dict[str, Any]:
    """The API call a finding of this type is about."""
    if "Exec" in finding:
        return {"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "kube-system",
                                                "name": "kube-proxy-x7k2p"},
                "requestURI": "/api/v1/namespaces/kube-system/pods/kube-proxy-x7k2p/exec?command=sh", "code": 101}
    if "RoleBinding" in finding or "AccessToDefault" in finding or "AccessGranted" in finding:
        return {"verb": "create", "objectRef": {"resource": "clusterrolebindings", "name": "sample-binding"},
                "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "code": 201}
    if "RoleCreated" in finding:
        return {"verb": "create", "objectRef": {"resource": "clusterroles", "name": "sample-role"},
                "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterroles", "code": 201}
    if "PermissionChecked" in finding:
        return {"verb": "create", "objectRef": {"resource": "selfsubjectaccessreviews"},
                "requestURI": "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "code": 201}
    if "Dashboard" in finding:
        return {"verb": "patch", "objectRef": {"resource": "services", "namespace": "kubernetes-dashboard",
                                               "name": "kubernetes-dashboard"},
                "requestURI": "/api/v1/namespaces/kubernetes-dashboard/services/kubernetes-dashboard", "code": 200}
    if "Workload" in finding or "Container" in finding:
        return {"verb": "create", "objectRef": {"resource": "pods", "namespace": "default", "name": "sample-pod"},
                "requestURI": "/api/v1/namespaces/default/pods", "code": 201}
    if finding.startswith("CredentialAccess"):
        return {"verb": "list", "objectRef": {"resource": "secrets", "namespace": "default"},
                "requestURI": "/api/v1/namespaces/default/secrets", "code": 200}
    return {"verb": "list", "objectRef": {"resource": "pods", "namespace": "default"},
            "requestURI": "/api/v1/namespaces/default/pods", "code": 200}


def _event(finding: str) -> AuditEvent:
    call = _call(finding)
    anonymous = "Anonymous" in finding and "Granted" not in finding
    document = {
        "auditID": str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "verb": call["verb"],
        "requestURI": call["requestURI"],
        "objectRef": call["objectRef"],
        "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]} if anonymous else {
            "username": "sample-user", "uid": "sample-uid", "groups": ["system:authenticated"]
        },
        "sourceIPs": [SAMPLE_IP],
        "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        "responseStatus": {"code": call["code"]},
        "stageTimestamp": now_iso(),
    }
    event = msgspec.convert(document, AuditEvent)
    event.cluster = SAMPLE_CLUSTER
    return event


def _details(finding: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if "Workload" in finding or "Container" in finding:
        privileged = "Privileged" in finding
        details["workload"] = {
            "name": "sample-pod", "type": "pods", "uid": "00000000-0000-4000-8000-000000000000",
            "namespace": "default", "serviceAccountName": "default", "hostNetwork": False,
            "containers": [{"name": "app", "image": "busybox:1.36", "imagePrefix": "",
                            "securityContext": {"privileged": privileged}}],
        }
        if "SensitiveMount" in finding:
            details["workload"]["volumes"] = [{"name": "host-etc", "hostPath": {"path": "/etc"}}]
            details["workload"]["containers"][0]["volumeMounts"] = [{"name": "host-etc", "mountPath": "/host"}]
    if "RoleBinding" in finding or "AccessToDefault" in finding or "AccessGranted" in finding:
        details["role_binding"] = {"kind": "ClusterRoleBinding", "name": "sample-binding", "uid": "sample-uid",
                                   "roleRefName": "cluster-admin", "roleRefKind": "ClusterRole"}
    if "RoleCreated" in finding:
        details["role"] = {"kind": "ClusterRole", "name": "sample-role", "uid": "sample-uid"}
    if "PermissionChecked" in finding:
        details["permission_check"] = {"verb": "create", "resource": "pods/exec", "namespace": "default",
                                       "allowed": True}
    if "IPCaller" in finding:
        name = "TorExitNodes" if "Tor" in finding else "sample-threat-list"
        details["threat_intel"] = [{"threatListName": name, "threatNames": []}]
        details["additional_info"] = {"threatListName": name}
    if "AnomalousBehavior" in finding:
        details["anomaly"] = {
            "profiles": {"USER": {"asnOrg": [{"profileType": "FREQUENCY", "profileSubtype": "FREQUENT",
                                              "observations": {"text": ["EXAMPLE-CORP-AS"]}}]}},
            "unusual": {"behavior": {"USER": {"asnOrg": {"profileType": "FREQUENCY", "profileSubtype": "UNSEEN",
                                                         "observations": {"text": ["EXAMPLE-HOSTING-AS"]}}}}},
        }
    return details


def sample_finding(finding: str, settings: Settings) -> dict[str, Any]:
    """A sample finding of type ``finding`` (a name from the catalogue; KeyError otherwise)."""
    catalogued = finding_type(finding)
    event = _event(finding)
    details = _details(finding)
    info = {**details.pop("additional_info", {}), "sample": True}
    detection = make_detection(
        finding,
        event,
        key=uuid.uuid4().hex,
        description=f"This is a sample finding. {catalogued.title}",
        remote_ip=SAMPLE_IP,
        additional_info=info,
        **details,
    )
    detection.title = f"[SAMPLE] {catalogued.title}"
    return FindingBuilder(settings).build(detection)
