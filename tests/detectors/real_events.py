"""Hand-built audit events in the shape a real kube-apiserver logs them (compare the lab corpus).

Every event carries what the API server writes: ``kind``/``apiVersion``, a unique ``auditID``, stage,
verb, the full ``requestURI`` with its query, the user with groups, ``sourceIPs``, ``userAgent``, an
``objectRef`` with ``apiGroup``/``apiVersion``, a ``responseStatus``, the authorization annotations and
timestamps; writes carry the request body and (at ``RequestResponse`` level) the response body. A failed
request's response body is a ``Status``.
"""

from __future__ import annotations

import itertools
from typing import Any

Record = dict[str, Any]

ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
ANONYMOUS = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
KUBECTL = "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"
_ids = itertools.count(1)

#: resource → (apiGroup, version, kind, namespaced)
RESOURCES: dict[str, tuple[str, str, str, bool]] = {
    "pods": ("", "v1", "Pod", True),
    "deployments": ("apps", "v1", "Deployment", True),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "statefulsets": ("apps", "v1", "StatefulSet", True),
    "replicasets": ("apps", "v1", "ReplicaSet", True),
    "replicationcontrollers": ("", "v1", "ReplicationController", True),
    "jobs": ("batch", "v1", "Job", True),
    "cronjobs": ("batch", "v1", "CronJob", True),
    "services": ("", "v1", "Service", True),
    "configmaps": ("", "v1", "ConfigMap", True),
    "secrets": ("", "v1", "Secret", True),
    "serviceaccounts": ("", "v1", "ServiceAccount", True),
    "namespaces": ("", "v1", "Namespace", False),
    "nodes": ("", "v1", "Node", False),
    "events": ("", "v1", "Event", True),
    "roles": ("rbac.authorization.k8s.io", "v1", "Role", True),
    "rolebindings": ("rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    "clusterroles": ("rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
    "mutatingwebhookconfigurations": ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", False),
    "validatingwebhookconfigurations": (
        "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", False),
    "certificatesigningrequests": ("certificates.k8s.io", "v1", "CertificateSigningRequest", False),
    "selfsubjectaccessreviews": ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", False),
}

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists",
            422: "Invalid", 500: "InternalError"}


def uri_of(resource: str, namespace: str, name: str, subresource: str = "", *, collection: bool = False,
           version: str = "") -> str:
    group, default_version, _, namespaced = RESOURCES.get(resource, ("", "v1", "", True))
    version = version or default_version
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}"
    if not collection and name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def api_event(
    verb: str,
    resource: str,
    *,
    name: str = "",
    namespace: str = "",
    subresource: str = "",
    body: Record | None = None,
    response: Record | None = None,
    code: int | None = None,
    user: Record | None = None,
    impersonate: Record | None = None,
    query: str = "",
    source_ips: list[str] | None = None,
    user_agent: str = KUBECTL,
    stage: str = "ResponseComplete",
    version: str = "",
    audit_id: str = "",
) -> Record:
    """One event; the response defaults to the request body (RequestResponse level) on success."""
    group, default_version, kind, _ = RESOURCES.get(resource, ("", "v1", "", True))
    if code is None:
        code = 201 if verb == "create" and not subresource else 200
    uri = uri_of(resource, namespace, name, subresource, collection=verb == "create" and not subresource,
                 version=version)
    if query:
        uri += f"?{query}"
    record: Record = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": audit_id or f"00000000-0000-4000-8000-{next(_ids):012d}",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user or ADMIN,
        "sourceIPs": source_ips or ["10.0.4.21"],
        "userAgent": user_agent,
        "objectRef": {"resource": resource, "apiGroup": group, "apiVersion": version or default_version},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": "2026-11-30T10:00:00.000000Z",
        "stageTimestamp": "2026-11-30T10:00:00.120000Z",
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                        "authorization.k8s.io/reason": ""},
    }
    if namespace:
        record["objectRef"]["namespace"] = namespace
    if not name and isinstance(body, dict):
        name = body.get("metadata", {}).get("name", "")
    if name:  # a create names its object too, unless the object only has a generateName
        record["objectRef"]["name"] = name
    if subresource:
        record["objectRef"]["subresource"] = subresource
    if impersonate is not None:
        record["impersonatedUser"] = impersonate
    if body is not None:
        record["requestObject"] = body
    if code >= 400:
        record["responseStatus"].update(status="Failure", reason=_REASONS.get(code, "Unknown"))
        record["responseObject"] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "reason": _REASONS.get(code, "Unknown"), "code": code}
    elif response is not None:
        record["responseObject"] = response
    elif body is not None and isinstance(body, dict) and body.get("kind") == kind:
        stored = {**body, "metadata": {**body.get("metadata", {}), "uid": f"uid-{record['auditID'][-6:]}",
                                       "resourceVersion": "4711"}}
        record["responseObject"] = stored
    return record


def v1beta1(record: Record) -> Record:
    """The same event as an ``audit.k8s.io/v1beta1`` log writes it (a ``timestamp``, no stage times)."""
    out = {k: v for k, v in record.items() if k not in ("requestReceivedTimestamp", "stageTimestamp")}
    out["apiVersion"] = "audit.k8s.io/v1beta1"
    out["timestamp"] = record["stageTimestamp"]
    return out


def container(name: str = "app", image: str = "nginx:1.27", **extra: Any) -> Record:
    return {"name": name, "image": image, **extra}


def pod_spec(*containers: Record, **extra: Any) -> Record:
    return {"containers": list(containers) or [container()], **extra}


def workload(resource: str, name: str, namespace: str, spec: Record, **meta: Any) -> Record:
    """A workload object of any kind with ``spec`` as its pod spec, wherever that kind keeps it."""
    _, version, kind, _ = RESOURCES[resource]
    group = RESOURCES[resource][0]
    api_version = f"{group}/{version}" if group else version
    template = {"metadata": {"labels": {"app": name}}, "spec": spec}
    if resource == "pods":
        body_spec = spec
    elif resource == "cronjobs":
        body_spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif resource == "jobs":
        body_spec = {"template": template}
    else:
        body_spec = {"selector": {"matchLabels": {"app": name}}, "template": template}
    return {"kind": kind, "apiVersion": api_version, "metadata": {"name": name, "namespace": namespace, **meta},
            "spec": body_spec}


def binding(resource: str, name: str, role: str, subjects: list[Record], *, namespace: str = "",
            role_kind: str = "ClusterRole") -> Record:
    kind = "ClusterRoleBinding" if resource == "clusterrolebindings" else "RoleBinding"
    meta: Record = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects}


def exec_event(namespace: str, pod: str, *, code: int = 101, stage: str = "ResponseStarted", verb: str = "create",
               command: tuple[str, ...] = ("sh",), subresource: str = "exec", audit_id: str = "",
               user: Record | None = None, source_ips: list[str] | None = None) -> Record:
    query = "&".join(f"command={c}" for c in command) + "&container=app&stdin=true&stdout=true&tty=true"
    if subresource == "attach":
        query = "container=app&stdin=true&stdout=true&tty=true"
    record = api_event(verb, "pods", name=pod, namespace=namespace, subresource=subresource, code=code,
                       query=query, stage=stage, audit_id=audit_id, user=user, source_ips=source_ips)
    if code == 101:
        record["responseStatus"] = {"metadata": {}, "code": 101}
    return record
