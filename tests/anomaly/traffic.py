"""Audit events for the anomaly tests: a person's habits over days, then one unusual action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import Pipeline

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
HOME_IP = "52.94.140.10"
HOME_AGENT = "kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350"
VPS_IP = "167.99.92.58"
ATTACK_AGENT = "python-requests/2.31.0"
ALICE_ARN = "arn:aws:sts::111122223333:assumed-role/developers/alice"

_decoder = msgspec.json.Decoder(AuditEvent)
_serial = iter(range(10**9))


def event(
    verb: str,
    resource: str = "",
    namespace: str = "",
    name: str = "",
    *,
    sub: str = "",
    at: datetime,
    ip: str = HOME_IP,
    agent: str = HOME_AGENT,
    user: str = "arn:aws:iam::111122223333:role/developers",
    arn: str = ALICE_ARN,
    request: Any = None,
    response: Any = None,
    code: int = 200,
    path: str = "",
) -> AuditEvent:
    """One ResponseComplete event as EKS logs a call by an IAM role session."""
    record: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": f"00000000-0000-4000-8000-{next(_serial):012d}", "stage": "ResponseComplete",
        "verb": verb, "requestURI": path or f"/api/v1/{resource}", "sourceIPs": [ip], "userAgent": agent,
        "user": {"username": user, "groups": ["system:authenticated"],
                 "extra": {"arn": [arn], "sessionName": [arn.rsplit("/", 1)[-1]]}},
        "responseStatus": {"metadata": {}, "code": code},
        "stageTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if resource:
        record["objectRef"] = {"resource": resource, "namespace": namespace, "name": name, "subresource": sub}
    if request is not None:
        record["requestObject"] = request
    if response is not None:
        record["responseObject"] = response
    decoded = _decoder.decode(orjson.dumps(record))
    decoded.cluster = "prod"
    return decoded


def habits(days: int = 8, *, start: datetime = START, per_day: int = 30, also: Any = None,
           arn: str = ALICE_ARN) -> list[AuditEvent]:
    """Working days of reading pods and deployments in ``shop`` from home; ``also(at)`` adds a habit."""
    found = []
    for day in range(days):
        for index in range(per_day):
            at = start + timedelta(days=day, minutes=10 * index)
            resource = ("pods", "deployments", "services")[index % 3]
            found.append(event("list", resource, "shop", at=at, arn=arn))
        if also is not None:
            found.extend(also(start + timedelta(days=day, hours=6)))
    return found


def pipeline(state: MemoryState | None = None, **anomaly: Any) -> Pipeline:
    settings = Settings()
    for key, value in anomaly.items():
        setattr(settings.anomaly, key, value)
    return Pipeline(settings, state if state is not None else MemoryState())


def anomalies(pipe: Pipeline, events: list[AuditEvent]) -> list[dict[str, Any]]:
    """The AnomalousBehavior findings the events raise, one per detection."""
    return [f for f in pipe.process(events) if "AnomalousBehavior" in f["type"]]


# -- bodies ------------------------------------------------------------------------------------------------

def deployment(name: str, image: str, *, privileged: bool = False, host_path: str = "",
               command: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if privileged:
        container["securityContext"] = {"privileged": True}
    if command:
        container["command"] = command
    spec: dict[str, Any] = {"containers": [container]}
    if host_path:
        container["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
        spec["volumes"] = [{"name": "host", "hostPath": {"path": host_path}}]
    return {"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
            "spec": {"replicas": 1, "template": {"metadata": {}, "spec": spec}}}


def cluster_role(name: str, verbs: list[str], resources: list[str]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name, "uid": f"uid-{name}"},
            "rules": [{"apiGroups": ["*"], "verbs": verbs, "resources": resources}]}


def cluster_role_binding(name: str, role: str, user: str) -> dict[str, Any]:
    return {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name, "uid": f"uid-{name}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": user}]}


def access_review(verb: str, resource: str, namespace: str = "", sub: str = "") -> dict[str, Any]:
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace,
                                            "subresource": sub}},
            "status": {"allowed": True}}
