"""Builders of the Kubernetes objects that travel in ``requestObject`` and ``responseObject``.

Shapes follow what kubectl sends and what the API server returns after defaulting (the fields
``terminationMessagePath``, ``dnsPolicy`` and so on are there because a real server adds them and a
detector that trips over them should trip in tests, not in production).
"""

from __future__ import annotations

from typing import Any

import orjson

from kubeguard.sim.clock import rfc3339_seconds

RBAC = "rbac.authorization.k8s.io"


def container(
    name: str,
    image: str,
    *,
    command: list[str] | None = None,
    args: list[str] | None = None,
    privileged: bool = False,
    mounts: list[dict[str, Any]] | None = None,
    ports: list[int] | None = None,
    hardened: bool = True,
) -> dict[str, Any]:
    """A container as the API server stores it. ``hardened`` is the securityContext a tidy team sets."""
    spec: dict[str, Any] = {"name": name, "image": image}
    if command:
        spec["command"] = command
    if args:
        spec["args"] = args
    if ports:
        spec["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in ports]
    spec["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    if mounts:
        spec["volumeMounts"] = mounts
    spec["terminationMessagePath"] = "/dev/termination-log"
    spec["terminationMessagePolicy"] = "File"
    spec["imagePullPolicy"] = "IfNotPresent"
    if privileged:
        spec["securityContext"] = {"privileged": True}
    elif hardened:
        spec["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
    return spec


def host_path_volume(name: str, path: str, kind: str = "Directory") -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


def mount(name: str, path: str, read_only: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        spec["readOnly"] = True
    return spec


def pod_spec(
    containers: list[dict[str, Any]],
    *,
    service_account: str = "default",
    volumes: list[dict[str, Any]] | None = None,
    host_network: bool = False,
    host_pid: bool = False,
    node_name: str | None = None,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if volumes:
        spec["volumes"] = volumes
    spec["restartPolicy"] = restart_policy
    spec["terminationGracePeriodSeconds"] = 30
    spec["dnsPolicy"] = "ClusterFirst"
    spec["serviceAccountName"] = service_account
    spec["serviceAccount"] = service_account
    if node_name:
        spec["nodeName"] = node_name
    if host_network:
        spec["hostNetwork"] = True
    if host_pid:
        spec["hostPID"] = True
    spec["securityContext"] = {}
    spec["schedulerName"] = "default-scheduler"
    return spec


def _meta(name: str, namespace: str | None, labels: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def pod(namespace: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(name, namespace, labels), "spec": spec,
            "status": {}}


def owned_pod(
    namespace: str, generate_name: str, spec: dict[str, Any], labels: dict[str, str], owner: dict[str, Any]
) -> dict[str, Any]:
    """A pod as a ReplicaSet, DaemonSet or Job controller posts it: generateName, ownerReferences."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"generateName": generate_name, "labels": labels, "ownerReferences": [owner]},
        "spec": spec,
        "status": {},
    }


def owner_reference(kind: str, name: str, owner_uid: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": owner_uid, "controller": True,
            "blockOwnerDeletion": True}


def _template(app: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": spec}


def deployment(namespace: str, name: str, spec: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, namespace, {"app": name}),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name, spec),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {},
    }


def replica_set(namespace: str, name: str, app: str, spec: dict[str, Any], replicas: int,
                owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app},
                     "ownerReferences": [owner]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": _template(app, spec)},
        "status": {"replicas": 0},
    }


def daemon_set(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, namespace, {"app": name}),
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name, spec),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10,
        },
        "status": {},
    }


def job(namespace: str, name: str, app: str, spec: dict[str, Any], owner: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": app}}
    if owner:
        meta["ownerReferences"] = [owner]
    return {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "metadata": meta,
        "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1, "template": _template(app, spec)},
        "status": {},
    }


def cron_job(namespace: str, name: str, schedule: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": _meta(name, namespace, {"app": name}),
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": _template(name, spec)}},
        },
        "status": {},
    }


def policy_rule(verbs: list[str], resources: list[str], groups: list[str] | None = None) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups if groups is not None else [""], "resources": resources}


def role(kind: str, name: str, namespace: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A Role (``namespace`` set) or ClusterRole."""
    return {"kind": kind, "apiVersion": f"{RBAC}/v1", "metadata": _meta(name, namespace, None), "rules": rules}


def subject(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    """A binding subject: ``User``/``Group`` carry the RBAC apiGroup, a ``ServiceAccount`` a namespace."""
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace or "default"}
    return {"kind": kind, "apiGroup": RBAC, "name": name}


def binding(kind: str, name: str, namespace: str | None, role_kind: str, role_name: str,
            subjects: list[dict[str, Any]]) -> dict[str, Any]:
    """A RoleBinding (``namespace`` set) or ClusterRoleBinding."""
    return {
        "kind": kind,
        "apiVersion": f"{RBAC}/v1",
        "metadata": _meta(name, namespace, None),
        "subjects": subjects,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
    }


def service(namespace: str, name: str, service_type: str, port: int, target: int,
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, labels or {"app": name}),
        "spec": {
            "type": service_type,
            "selector": {"app": name},
            "ports": [{"protocol": "TCP", "port": port, "targetPort": target}],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    }


def service_account_object(namespace: str, name: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace}}


def access_review(verb: str, resource: str, namespace: str = "", group: str = "", subresource: str = "",
                  allowed: bool | None = None, reason: str = "") -> dict[str, Any]:
    """A SelfSubjectAccessReview as ``kubectl auth can-i`` posts it; ``allowed`` set makes the response."""
    attributes: dict[str, Any] = {"verb": verb, "resource": resource}
    if namespace:
        attributes["namespace"] = namespace
    if group:
        attributes["group"] = group
    if subresource:
        attributes["subresource"] = subresource
    review: dict[str, Any] = {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"resourceAttributes": attributes},
        "status": {"allowed": False},
    }
    if allowed is not None:
        review["status"] = {"allowed": allowed, "reason": reason} if reason else {"allowed": allowed}
    return review


def lease(namespace: str, name: str, holder: str, renew_us: int, duration_s: int) -> dict[str, Any]:
    return {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration_s,
                 "renewTime": f"{rfc3339_seconds(renew_us)[:-1]}.000000Z"},
    }


def stored(obj: dict[str, Any], object_uid: str, resource_version: int, created_us: int,
           generation: int = 1) -> dict[str, Any]:
    """The object as the API server returns it: a copy carrying uid, resourceVersion and timestamps."""
    copy = orjson.loads(orjson.dumps(obj))
    meta = copy.setdefault("metadata", {})
    meta["uid"] = object_uid
    meta["resourceVersion"] = str(resource_version)
    meta["creationTimestamp"] = rfc3339_seconds(created_us)
    if copy.get("kind") in ("Deployment", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"):
        meta["generation"] = generation
    return copy
