"""Attacks are found and requests that changed nothing are not, over the twelve signature and anonymous types.

Every case is a short, real-shaped audit log (``real_events``) scanned on its own through the whole
default detector set with fresh state. Attack cases must raise exactly the types listed; benign cases
(dry runs, failed calls, execs that never connected, bootstrap bindings, the tricky shapes around each
rule) must raise nothing at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detectors.real_events import (
    ADMIN,
    ANONYMOUS,
    RESOURCES,
    api_event,
    binding,
    container,
    exec_event,
    pod_spec,
    v1beta1,
    workload,
)
from detectors.scanning import decode, scan, types
from kubeguard.detectors.effect import Outcome, is_dry_run, outcome
from kubeguard.detectors.state import MemoryState

PRIV = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
MOUNT = "Persistence:Kubernetes/ContainerWithSensitiveMount"
EXEC = "Execution:Kubernetes/ExecInKubeSystemPod"
ANON_GRANTED = "Policy:Kubernetes/AnonymousAccessGranted"
DEFAULT_SA = "Policy:Kubernetes/AdminAccessToDefaultServiceAccount"
DASHBOARD = "Policy:Kubernetes/ExposedDashboard"
KUBEFLOW = "Policy:Kubernetes/KubeflowDashboardExposed"
WORKLOADS = [r for r in RESOURCES if RESOURCES[r][2] in (
    "Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")]
APPLY = "fieldManager=kubectl&fieldValidation=Strict&force=true"  # server-side apply's query
IPV6 = ["2001:db8:7:1::1f"]


def remembered(state: MemoryState, tmp_path: Path) -> dict[str, Any]:
    """What the state would persist: every remembered key of every scope, and every blob."""
    path = tmp_path / "state.json"
    state.save(path)
    snapshot = json.loads(path.read_text())
    return {"sets": {k: v for k, v in snapshot["sets"].items() if v}, "blobs": snapshot["blobs"]}


def privileged_pod_spec(image: str = "alpine:3.20") -> dict[str, Any]:
    return pod_spec(container("shell", image, securityContext={"privileged": True}))


def etc_mount_spec(path: str = "/etc", read_only: bool = False) -> dict[str, Any]:
    return pod_spec(container("app", "busybox:1.36", volumeMounts=[
        {"name": "host", "mountPath": "/host", **({"readOnly": True} if read_only else {})}]),
        volumes=[{"name": "host", "hostPath": {"path": path, "type": "Directory"}}])


def launch(resource: str, spec: dict[str, Any], *, verb: str = "create", name: str = "w", namespace: str = "dev",
           **options: Any) -> dict[str, Any]:
    body = workload(resource, name, namespace, spec)
    return api_event(verb, resource, name=name if verb != "create" else "", namespace=namespace, body=body,
                     response=options.pop("response", None) or _stored(body), **options)


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "uid": "5d6f1c1e-0000-4000-8000-000000000001"}}


def bind(resource: str, role: str, subjects: list[dict[str, Any]], *, verb: str = "create", name: str = "b",
         namespace: str = "", **options: Any) -> dict[str, Any]:
    body = binding(resource, name, role, subjects, namespace=namespace, role_kind=options.pop("role_kind",
                                                                                              "ClusterRole"))
    return api_event(verb, resource, name=name if verb != "create" else "", namespace=namespace, body=body,
                     response=_stored(body) if options.get("code", 200) < 400 else None, **options)


def dashboard_service(service_type: str, *, name: str = "kubernetes-dashboard",
                      namespace: str = "kubernetes-dashboard", annotations: dict[str, str] | None = None,
                      verb: str = "create", **options: Any) -> dict[str, Any]:
    body = {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "labels": {"k8s-app": name},
                         "annotations": annotations or {}},
            "spec": {"type": service_type, "selector": {"k8s-app": name},
                     "ports": [{"port": 443, "targetPort": 8443}]}}
    return api_event(verb, "services", name=name if verb != "create" else "", namespace=namespace, body=body,
                     response=_stored(body) if options.get("code", 200) < 400 else None, **options)


ANON_SUBJECT = [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:anonymous"}]
UNAUTH_GROUP = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:unauthenticated"}]
DEFAULT_SUBJECT = [{"kind": "ServiceAccount", "name": "default", "namespace": "dev"}]

ATTACKS: dict[str, tuple[list[dict[str, Any]], set[str]]] = {
    **{f"privileged {r}": ([launch(r, privileged_pod_spec(f"alpine:{i}"))], {PRIV}) for i, r in enumerate(WORKLOADS)},
    **{f"sensitive mount {r}": ([launch(r, etc_mount_spec())], {MOUNT}) for r in WORKLOADS},
    "privileged init container": ([launch("pods", pod_spec(container(), initContainers=[
        container("init", "busybox:1.36", securityContext={"privileged": True})]))], {PRIV}),
    "privileged and mounted in one pod": ([launch("pods", {**privileged_pod_spec(), **{
        k: v for k, v in etc_mount_spec("/").items() if k == "volumes"},
        "containers": [container("shell", "alpine:3.20", securityContext={"privileged": True},
                                 volumeMounts=[{"name": "host", "mountPath": "/host"}])]})], {PRIV, MOUNT}),
    "server-side apply of a privileged deployment": (
        [launch("deployments", privileged_pod_spec(), verb="patch", query=APPLY)], {PRIV}),
    "strategic-merge patch makes a container privileged (response is the whole object)": ([api_event(
        "patch", "deployments", name="web", namespace="dev",
        body={"spec": {"template": {"spec": {"containers": [{"name": "shell", "securityContext": {
            "privileged": True}}]}}}},
        response=_stored(workload("deployments", "web", "dev", privileged_pod_spec("web:2"))))], {PRIV}),
    "update (PUT) of a daemonset to mount the docker socket": (
        [launch("daemonsets", etc_mount_spec("/var/run/docker.sock"), verb="update")], {MOUNT}),
    "kubectl debug --profile=sysadmin ephemeral container": ([api_event(
        "patch", "pods", name="web-1", namespace="dev", subresource="ephemeralcontainers",
        body={"spec": {"ephemeralContainers": [container("debugger-x", "busybox:1.36", securityContext={
            "privileged": True})]}},
        response=_stored(workload("pods", "web-1", "dev", pod_spec(container(), ephemeralContainers=[
            container("debugger-x", "busybox:1.36", securityContext={"privileged": True})]))))], {PRIV}),
    "kubectl debug node: host root mounted, privileged": ([launch("pods", pod_spec(
        container("debugger", "busybox:1.37", securityContext={"privileged": True},
                  volumeMounts=[{"name": "host-root", "mountPath": "/host"}]),
        hostPID=True, hostNetwork=True, volumes=[{"name": "host-root", "hostPath": {"path": "/"}}]),
        name="node-debugger-ip-10-0-1-5-abcde", namespace="default")], {PRIV, MOUNT}),
    "v1beta1 event, apps/v1beta1 deployment": ([v1beta1(launch("deployments", etc_mount_spec("/etc/kubernetes"),
                                                               version="v1beta1"))], {MOUNT}),
    "hostPath with a trailing slash": ([launch("pods", etc_mount_spec("/var/lib/kubelet/"))], {MOUNT}),
    "exec in kube-system, 101 at ResponseStarted only": ([exec_event("kube-system", "coredns-1")], {EXEC}),
    "exec in kube-system, 101 at ResponseComplete only": (
        [exec_event("kube-system", "coredns-1", stage="ResponseComplete")], {EXEC}),
    "exec over websocket (get), both stages": ([
        exec_event("kube-system", "etcd-cp-1", verb="get", audit_id="ws-1"),
        exec_event("kube-system", "etcd-cp-1", verb="get", audit_id="ws-1", stage="ResponseComplete")], {EXEC}),
    "attach to a kube-system pod": ([exec_event("kube-system", "kube-proxy-x", subresource="attach")], {EXEC}),
    "exec from an IPv6 address": ([exec_event("kube-system", "coredns-1", source_ips=IPV6)], {EXEC}),
    "cluster-admin bound to system:anonymous": (
        [bind("clusterrolebindings", "cluster-admin", ANON_SUBJECT)], {ANON_GRANTED}),
    "system:discovery bound to system:anonymous by an admin": (
        [bind("clusterrolebindings", "system:discovery", ANON_SUBJECT)], {ANON_GRANTED}),
    "system:basic-user bound to system:unauthenticated by an admin": (
        [bind("clusterrolebindings", "system:basic-user", UNAUTH_GROUP)], {ANON_GRANTED}),
    "public-info-viewer re-bound by someone impersonating the API server": (
        [bind("clusterrolebindings", "system:public-info-viewer", UNAUTH_GROUP, verb="update",
              name="system:public-info-viewer",
              impersonate={"username": "system:apiserver", "groups": ["system:masters"]})],
        {ANON_GRANTED, "PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated"}),
    "rolebinding of view to anonymous, v1beta1 RBAC": ([v1beta1(bind(
        "rolebindings", "view", ANON_SUBJECT, namespace="prod", version="v1beta1"))], {ANON_GRANTED}),
    "server-side apply adds the unauthenticated group": (
        [bind("clusterrolebindings", "edit", UNAUTH_GROUP, verb="patch", name="ops", query=APPLY)], {ANON_GRANTED}),
    "JSON patch appends system:anonymous, no response body logged": ([{
        **api_event("patch", "clusterrolebindings", name="ops-view",
                    body=[{"op": "add", "path": "/subjects/-", "value": {
                        "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:anonymous"}}]),
        "level": "Request"}], {ANON_GRANTED}),
    "merge patch sets the unauthenticated group, no response body logged": ([{
        **api_event("patch", "rolebindings", name="viewers", namespace="prod",
                    body={"subjects": UNAUTH_GROUP}), "level": "Request"}], {ANON_GRANTED}),
    "admin to dev:default": ([bind("rolebindings", "admin", DEFAULT_SUBJECT, namespace="dev")], {DEFAULT_SA}),
    "cluster-admin to the default account named as a User": ([bind(
        "clusterrolebindings", "cluster-admin",
        [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccount:dev:default"}])],
        {DEFAULT_SA}),
    "cluster-admin to every service account of a namespace": ([bind(
        "clusterrolebindings", "cluster-admin",
        [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccounts:dev"}])],
        {DEFAULT_SA}),
    "a wildcard role created, then bound to default": ([
        api_event("create", "roles", namespace="dev", body={
            "kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "everything", "namespace": "dev"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        bind("rolebindings", "everything", DEFAULT_SUBJECT, namespace="dev", role_kind="Role")], {DEFAULT_SA}),
    "dashboard made a NodePort by patch": ([dashboard_service("NodePort", verb="patch",
                                                              query="fieldManager=kubectl-patch")], {DASHBOARD}),
    "dashboard LoadBalancer created, v1beta1": ([v1beta1(dashboard_service("LoadBalancer"))], {DASHBOARD}),
    "kubeflow central dashboard LoadBalancer": ([dashboard_service(
        "LoadBalancer", name="centraldashboard", namespace="kubeflow")], {KUBEFLOW}),
    "anonymous reads secrets from IPv6": ([api_event("list", "secrets", namespace="prod", user=ANONYMOUS,
                                                     user_agent="curl/8.5.0", source_ips=IPV6)],
                                          {"CredentialAccess:Kubernetes/SuccessfulAnonymousAccess"}),
    "anonymous lists pods": ([api_event("list", "pods", namespace="default", user=ANONYMOUS)],
                             {"Discovery:Kubernetes/SuccessfulAnonymousAccess"}),
    "anonymous creates a configmap": ([api_event("create", "configmaps", namespace="default", user=ANONYMOUS,
                                                 body={"kind": "ConfigMap", "metadata": {"name": "x"}})],
                                      {"Impact:Kubernetes/SuccessfulAnonymousAccess"}),
    "anonymous creates a clusterrolebinding": ([bind("clusterrolebindings", "view", [
        {"kind": "User", "name": "bob"}], user=ANONYMOUS)], {"Persistence:Kubernetes/SuccessfulAnonymousAccess"}),
    "anonymous deletes events": ([api_event("deletecollection", "events", namespace="default", user=ANONYMOUS)],
                                 {"DefenseEvasion:Kubernetes/SuccessfulAnonymousAccess"}),
    "JSON patch makes a daemonset privileged": ([api_event(
        "patch", "daemonsets", name="agent", namespace="ops",
        body=[{"op": "add", "path": "/spec/template/spec/containers/0/securityContext",
               "value": {"privileged": True}}],
        response=_stored(workload("daemonsets", "agent", "ops", privileged_pod_spec("agent:7"))))], {PRIV}),
    "stolen kube-system token (not a controller) updates a deployment": ([launch(
        "deployments", etc_mount_spec(), verb="update", name="metrics", namespace="kube-system",
        user={"username": "system:serviceaccount:kube-system:metrics-server",
              "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"]})], {MOUNT}),
    "patch labels a public load balancer as the dashboard": ([{
        **dashboard_service("LoadBalancer", verb="patch", name="ops-ui", namespace="ops"),
        "requestObject": {"metadata": {"labels": {"k8s-app": "kubernetes-dashboard"}}},
        "responseObject": {"kind": "Service", "apiVersion": "v1", "metadata": {
            "name": "ops-ui", "namespace": "ops", "labels": {"k8s-app": "kubernetes-dashboard"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}}], {DASHBOARD}),
    "patch drops the internal-load-balancer annotation of the dashboard": ([{
        **dashboard_service("LoadBalancer", verb="patch"),
        "requestObject": {"metadata": {"annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-internal": None}}}}], {DASHBOARD}),
}


def _metadata_patch(resource: str, spec: dict[str, Any], patch: Any, *, user: dict[str, Any] | None = None,
                    name: str = "agent") -> dict[str, Any]:
    """A patch that leaves the security-relevant part alone; the response is the whole stored object."""
    return api_event("patch", resource, name=name, namespace="ops", body=patch, user=user,
                     response=_stored(workload(resource, name, "ops", spec)))


def _dry(record: dict[str, Any]) -> dict[str, Any]:
    separator = "&" if "?" in record["requestURI"] else "?"
    return {**record, "requestURI": record["requestURI"] + separator + "dryRun=All"}


def _failed(record: dict[str, Any], code: int) -> dict[str, Any]:
    failed = {k: v for k, v in record.items() if k != "responseObject"}
    reason = {403: "Forbidden", 404: "NotFound", 409: "AlreadyExists", 422: "Invalid", 500: "InternalError"}[code]
    failed["responseStatus"] = {"metadata": {}, "status": "Failure", "reason": reason, "code": code}
    failed["responseObject"] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                "code": code}
    return failed


_STREAMING = {name for name, (records, _) in ATTACKS.items() if "subresource" in records[0]["objectRef"]
              and records[0]["objectRef"]["subresource"] in ("exec", "attach")}

BENIGN: dict[str, list[dict[str, Any]]] = {
    **{f"dry run of: {name}": [_dry(r) for r in records] for name, (records, _) in ATTACKS.items()
       if name not in _STREAMING},
    **{f"{code} for: {name}": [_failed(r, code) for r in records]
       for code in (403, 409, 422) for name, (records, _) in ATTACKS.items()},
    "kubectl diff (server-side dry-run apply) of a privileged daemonset": [_dry(
        launch("daemonsets", privileged_pod_spec(), verb="patch", query=APPLY))],
    "exec into a missing kube-system pod: 404": [exec_event("kube-system", "gone", code=404)],
    "exec into a missing container: 400 at both stages": [
        exec_event("kube-system", "coredns-1", code=400, audit_id="e400"),
        exec_event("kube-system", "coredns-1", code=400, stage="ResponseComplete", audit_id="e400")],
    "exec denied: 403": [exec_event("kube-system", "coredns-1", code=403, stage="ResponseComplete")],
    "attach to a pod with no node: 400": [exec_event("kube-system", "coredns-1", code=400, subresource="attach")],
    "exec into an application pod (101)": [exec_event("dev", "web-1")],
    "exec request logged only as RequestReceived": [exec_event("kube-system", "coredns-1", stage="RequestReceived")],
    "the API server's own bootstrap bindings": [
        bind("clusterrolebindings", role, subjects, name=role, user={"username": "system:apiserver",
                                                                     "groups": ["system:masters"]})
        for role, subjects in (("system:public-info-viewer", UNAUTH_GROUP + [
            {"kind": "Group", "name": "system:authenticated"}]), ("system:discovery", [
                {"kind": "Group", "name": "system:authenticated"}]))],
    "JSON patch appends a colleague, no response body logged": [{
        **api_event("patch", "clusterrolebindings", name="ops-view", body=[
            {"op": "add", "path": "/subjects/-", "value": {"kind": "User", "name": "alice"}}]),
        "level": "Request"}],
    "JSON patch relabels an anonymous binding, no response body logged": [{
        **api_event("patch", "clusterrolebindings", name="legacy-anon", body=[
            {"op": "add", "path": "/metadata/labels/team", "value": "platform"}]),
        "level": "Request"}],
    "system:discovery bound to authenticated users by an admin": [bind(
        "clusterrolebindings", "system:discovery", [{"kind": "Group", "name": "system:authenticated"}])],
    "edit granted to the default account (not admin)": [bind("rolebindings", "edit", DEFAULT_SUBJECT,
                                                              namespace="dev")],
    "admin granted to a named service account": [bind("rolebindings", "admin", [
        {"kind": "ServiceAccount", "name": "ci-deployer", "namespace": "dev"}], namespace="dev")],
    "a role named like admin but namespaced": [bind("rolebindings", "cluster-admin", DEFAULT_SUBJECT,
                                                   namespace="dev", role_kind="Role")],
    "unprivileged debug container added to a pod whose own container is privileged": [api_event(
        "patch", "pods", name="cni-1", namespace="kube-system", subresource="ephemeralcontainers",
        user=ADMIN, body={"spec": {"ephemeralContainers": [container("debugger-y", "busybox:1.36")]}},
        response=_stored(workload("pods", "cni-1", "kube-system", pod_spec(
            container("cni", "calico/node:v3.28", securityContext={"privileged": True}),
            ephemeralContainers=[container("debugger-y", "busybox:1.36")]))))],
    "privileged: false said explicitly": [launch("pods", pod_spec(container(
        securityContext={"privileged": False, "allowPrivilegeEscalation": True})))],
    "read-only /etc mount": [launch("deployments", etc_mount_spec(read_only=True))],
    "hostPath that only looks sensitive": [launch("pods", etc_mount_spec("/etcd-backup"))],
    "hostPath /var/log/app (below /var/log, not /var/log)": [launch("daemonsets", etc_mount_spec("/var/log/app"))],
    "dashboard behind an internal load balancer": [dashboard_service(
        "LoadBalancer", annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "true"})],
    "dashboard as ClusterIP": [dashboard_service("ClusterIP")],
    "label on a privileged, host-mounting daemonset": [_metadata_patch(
        "daemonsets", {**etc_mount_spec(), "containers": [container(
            "agent", "agent:7", securityContext={"privileged": True},
            volumeMounts=[{"name": "host", "mountPath": "/host"}])]},
        {"metadata": {"labels": {"team": "platform"}}})],
    "kubectl rollout restart of a privileged deployment": [_metadata_patch(
        "deployments", privileged_pod_spec(), {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z"}}}}})],
    "scale by JSON patch": [_metadata_patch("statefulsets", etc_mount_spec(),
                                            [{"op": "replace", "path": "/spec/replicas", "value": 3}])],
    "label on a pod with a privileged container": [_metadata_patch(
        "pods", privileged_pod_spec(), {"metadata": {"labels": {"debug": "true"}}}, name="priv-1")],
    "the deployment controller records a revision on a host-mounting deployment": [{
        **launch("deployments", etc_mount_spec(), verb="update", name="agent", namespace="ops"),
        "user": {"username": "system:serviceaccount:kube-system:deployment-controller",
                 "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"]}}],
    "annotation on an existing anonymous binding": [{
        **bind("clusterrolebindings", "view", ANON_SUBJECT, verb="patch", name="legacy-anon"),
        "requestObject": {"metadata": {"annotations": {"owner": "platform"}}}}],
    "team label on an already exposed dashboard": [{
        **dashboard_service("LoadBalancer", verb="patch"),
        "requestObject": {"metadata": {"labels": {"team": "platform"}}}}],
    "owner annotation on an already exposed dashboard": [{
        **dashboard_service("LoadBalancer", verb="patch"),
        "requestObject": {"metadata": {"annotations": {"owner": "platform"}}}}],
    "anonymous health and version probes": [
        {**api_event("get", "pods", user=ANONYMOUS), "requestURI": path, "objectRef": None}
        for path in ("/healthz", "/livez?verbose", "/readyz", "/version", "/version/", "/readyz/etcd",
                     "/.well-known/openid-configuration", "/openid/v1/jwks")],
    "anonymous calls that were refused": [
        _failed(api_event("list", "secrets", namespace="prod", user=ANONYMOUS), 403),
        _failed(api_event("get", "secrets", name="db", namespace="prod", user=ANONYMOUS), 404),
        _failed(api_event("create", "configmaps", namespace="default", user=ANONYMOUS,
                          body={"kind": "ConfigMap", "metadata": {"name": "x"}}), 409)],
    "anonymous dry-run create": [_dry(api_event("create", "configmaps", namespace="default", user=ANONYMOUS,
                                                body={"kind": "ConfigMap", "metadata": {"name": "x"}}))],
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_found(name):
    records, expected = ATTACKS[name]
    assert types(records) == expected


@pytest.mark.parametrize("name", list(BENIGN))
def test_nothing_happened_nothing_reported(name):
    assert scan(BENIGN[name]) == []


def test_a_dry_run_leaves_no_state_behind_so_the_real_launch_is_still_new(tmp_path):
    state = MemoryState()
    dry = _dry(launch("pods", privileged_pod_spec("evil/miner:1"), namespace="prod"))
    mount = _dry(launch("daemonsets", etc_mount_spec(), namespace="prod"))
    role = _dry(api_event("create", "clusterroles", body={
        "kind": "ClusterRole", "metadata": {"name": "all"}, "rules": [{"resources": ["*"], "verbs": ["*"]}]}))
    assert scan([dry, mount, role], state) == []
    assert remembered(state, tmp_path) == {"sets": {}, "blobs": {}}
    real = {**dry, "requestURI": dry["requestURI"].split("?")[0], "auditID": "real-launch"}
    assert {f["type"] for f in scan([real], state)} == {PRIV}


def test_a_failed_request_leaves_no_detection_state_behind(tmp_path):
    state = MemoryState()
    scan([_failed(launch("pods", privileged_pod_spec("evil/miner:1")), 422)], state)
    assert remembered(state, tmp_path) == {"sets": {}, "blobs": {}}


def test_exec_counts_once_when_a_failed_stage_precedes_the_established_one():
    failed_first = exec_event("kube-system", "coredns-1", code=400, audit_id="same")
    established = exec_event("kube-system", "coredns-1", stage="ResponseComplete", audit_id="same")
    [finding] = scan([failed_first, established])
    assert finding["type"] == EXEC and finding["service"]["count"] == 1
    assert finding["service"]["action"]["kubernetesApiCallAction"]["statusCode"] == 101


@pytest.mark.parametrize(("query", "dry"), [
    ("dryRun=All", True), ("fieldManager=kubectl-client-side-apply&dryRun=All", True),
    ("dryRun=All&dryRun=All", True), ("dryrun=All", False), ("", False), ("dryRunX=All", False),
])
def test_dry_run_is_read_from_the_query_exactly_as_the_api_server_reads_it(query, dry):
    record = api_event("create", "pods", namespace="dev", query=query)
    [event] = decode([record])
    assert is_dry_run(event) is dry
    assert outcome(event) is (Outcome.DRY_RUN if dry else Outcome.APPLIED)

