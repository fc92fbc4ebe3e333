"""One real-shaped trigger per kubeguard extension type: the wire-model test validates what they raise."""

from __future__ import annotations

from typing import Any

from detectors.real_events import ADMIN, api_event, binding, container, exec_event, pod_spec, workload

Record = dict[str, Any]

PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7r0x\n-----END RSA PRIVATE KEY-----\n"


def impersonating(target: Record, **options: Any) -> Record:
    return api_event("list", "secrets", namespace="kube-system", impersonate=target, **options)


def token_request(namespace: str, account: str, **options: Any) -> Record:
    return api_event("create", "serviceaccounts", name=account, namespace=namespace, subresource="token",
                     code=201, body={"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                                     "spec": {"audiences": ["https://kubernetes.default.svc"]}}, **options)


def csr_approval(approved: bool = True, **options: Any) -> Record:
    condition = {"type": "Approved" if approved else "Denied", "status": "True", "reason": "KubectlApprove"}
    body = {"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1",
            "metadata": {"name": "csr-backdoor"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "mallory",
                     "usages": ["client auth"]},
            "status": {"conditions": [condition]}}
    return api_event("update", "certificatesigningrequests", name="csr-backdoor", subresource="approval", body=body,
                     response=body, **options)


def system_role_patch(name: str = "system:discovery", *, bootstrap: bool = True, **options: Any) -> Record:
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"} if bootstrap else {}
    role = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name, "labels": labels},
            "rules": [{"nonResourceURLs": ["/api", "/apis"], "verbs": ["get"]},
                      {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}
    return api_event("patch", "clusterroles", name=name, body={"rules": role["rules"]}, response=role, **options)


def node_proxy(path: str, *, verb: str = "create", code: int = 200, **options: Any) -> Record:
    record = api_event(verb, "nodes", name="ip-10-0-1-5", subresource="proxy", code=code, **options)
    record["requestURI"] = f"/api/v1/nodes/ip-10-0-1-5/proxy{path}"
    return record


def configmap(data: dict[str, str], *, verb: str = "create", **options: Any) -> Record:
    body = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "app-config", "namespace": "dev"},
            "data": data}
    return api_event(verb, "configmaps", namespace="dev", name="app-config" if verb != "create" else "",
                     body=body, **options)


def with_capabilities(*caps: str, image: str = "busybox:1.36", privileged: bool = False, **options: Any) -> Record:
    context: Record = {"capabilities": {"add": list(caps)}}
    if privileged:
        context["privileged"] = True
    spec = pod_spec(container("tool", image, securityContext=context))
    return api_event("create", "pods", namespace="dev", body=workload("pods", "tool", "dev", spec), **options)


def cluster_role(rules: list[Record], name: str = "ops-role", **options: Any) -> Record:
    body = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": name},
            "rules": rules}
    return api_event("create", "clusterroles", body=body, **options)


def cluster_admin_binding(subject: str = "alice", **options: Any) -> Record:
    return api_event("create", "clusterrolebindings", body=binding(
        "clusterrolebindings", f"{subject}-admin", "cluster-admin", [{"kind": "User", "name": subject}]), **options)


def system_namespace_deployment(**options: Any) -> Record:
    return api_event("create", "deployments", namespace="kube-system", body=workload(
        "deployments", "helper", "kube-system", pod_spec(container("helper", "alpine:3.20"))), **options)


def system_namespace_account(**options: Any) -> Record:
    return api_event("create", "serviceaccounts", namespace="kube-system", body={
        "kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "helper", "namespace": "kube-system"}},
        **options)


def node_port(**options: Any) -> Record:
    body = {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "dev"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}}
    return api_event("create", "services", namespace="dev", body=body, **options)


def host_network_pod(**options: Any) -> Record:
    spec = pod_spec(container("sniffer", "nicolaka/netshoot:v0.13"), hostNetwork=True, hostPID=True)
    return api_event("create", "pods", namespace="dev", body=workload("pods", "sniffer", "dev", spec), **options)


def webhook(kind: str = "mutatingwebhookconfigurations", **options: Any) -> Record:
    body = {"kind": "MutatingWebhookConfiguration", "apiVersion": "admissionregistration.k8s.io/v1",
            "metadata": {"name": "inject"}, "webhooks": [{"name": "inject.example.com", "clientConfig": {
                "url": "https://203.0.113.9/mutate"}, "rules": [{"operations": ["CREATE"], "resources": ["pods"]}]}]}
    return api_event("create", kind, body=body, **options)


#: finding type → a log that raises it (with the audit-trail pack on).
TRIGGERS: dict[str, list[Record]] = {
    "PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated": [
        impersonating({"username": "system:admin", "groups": ["system:masters"]},
                      user={"username": "mallory", "groups": ["system:authenticated"]})],
    "CredentialAccess:Kubernetes/SystemServiceAccountTokenRequested": [token_request("kube-system", "clusterrole-aggregation-controller")],
    "CredentialAccess:Kubernetes/CertificateSigningRequestApprovedByUser": [csr_approval()],
    "Persistence:Kubernetes/SystemClusterRoleModified": [system_role_patch()],
    "Execution:Kubernetes/KubeletCommandThroughNodeProxy": [node_proxy("/run/kube-system/etcd-cp-1/etcd?cmd=id")],
    "CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials": [configmap({"tls.key": PRIVATE_KEY})],
    "PrivilegeEscalation:Kubernetes/ContainerWithDangerousCapabilities": [with_capabilities("SYS_ADMIN")],
    "PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated": [cluster_role([
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])],
    "PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound": [cluster_admin_binding()],
    "Persistence:Kubernetes/WorkloadCreatedInSystemNamespace": [system_namespace_deployment()],
    "Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace": [system_namespace_account()],
    "Execution:Kubernetes/ExecInPod": [exec_event("dev", "web-1", command=("sh", "-c", "id"))],
    "Policy:Kubernetes/NodePortServiceCreated": [node_port()],
    "PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces": [host_network_pod()],
    "Persistence:Kubernetes/AdmissionWebhookConfigured": [webhook()],
}

__all__ = ["ADMIN", "TRIGGERS"]
