"""Attack scenarios, one function each, and the ground truth they leave behind.

Each scenario plays its requests through a :class:`Playbook`, naming for every request the finding
types it must raise (the exact GuardDuty names). The controllers' echo of an attacker's workload is
recorded as part of the scenario (its auditIDs are the attack's doing) but is not expected to raise
anything by itself. The eight GuardDuty-tester scenarios follow the kubectl actions of
awslabs/amazon-guardduty-tester; the others are the intrusions the anomaly detectors exist for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from kubeguard.sim import identities as ids
from kubeguard.sim import objects as k8s
from kubeguard.sim.actors import World
from kubeguard.sim.clock import DAY, SECOND, rfc3339
from kubeguard.sim.cluster import Human
from kubeguard.sim.events import Caller, EventFactory, Request, Stamped
from kubeguard.sim.identities import uid
from kubeguard.sim.rollout import daemon_set_rollout, deployment_rollout

RBAC = k8s.RBAC
ANONYMOUS_GRANTED = "Policy:Kubernetes/AnonymousAccessGranted"
ANONYMOUS_ACCESS = "Discovery:Kubernetes/SuccessfulAnonymousAccess"
EXEC_KUBE_SYSTEM = "Execution:Kubernetes/ExecInKubeSystemPod"
ADMIN_DEFAULT_SA = "Policy:Kubernetes/AdminAccessToDefaultServiceAccount"
EXPOSED_DASHBOARD = "Policy:Kubernetes/ExposedDashboard"
PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
SENSITIVE_MOUNT = "Persistence:Kubernetes/ContainerWithSensitiveMount"
TOR_DISCOVERY = "Discovery:Kubernetes/TorIPCaller"
CUSTOM_DISCOVERY = "Discovery:Kubernetes/MaliciousIPCaller.Custom"
CUSTOM_IMPACT = "Impact:Kubernetes/MaliciousIPCaller.Custom"
SECRETS_ACCESSED = "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"
EXEC_IN_POD = "Execution:Kubernetes/AnomalousBehavior.ExecInPod"
BINDING_CREATED = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated"
ROLE_CREATED = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated"
PERMISSION_CHECKED = "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked"
DEPLOYED = "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed"
DEPLOYED_PRIVILEGED = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
DEPLOYED_SENSITIVE = "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount"


class Playbook:
    """One scenario being played: its clock, its events and the findings each event must raise."""

    def __init__(self, name: str, world: World, at: int, rng: random.Random) -> None:
        self.name = name
        self.world = world
        self.at = at
        self.rng = rng
        self.factory = EventFactory(rng)
        self.events: list[Stamped] = []
        self.expected: dict[str, list[str]] = {}
        self.principals: list[str] = []
        self.source_ips: list[str] = []
        self.threat_ips: dict[str, list[str]] = {}

    def do(self, caller: Caller, request: Request, *raises: str,
           gap: tuple[int, int] = (300_000, 6 * SECOND)) -> dict[str, Any]:
        """The attacker's next request, ``gap`` after the previous one; returns its (first) event."""
        self.at += self.rng.randrange(*gap)
        stamped = self.factory.emit(self.at, caller, request)
        self.events += stamped
        event = stamped[0][2]
        for finding_type in raises:
            self.expected.setdefault(finding_type, []).append(event["auditID"])
        username = caller.user["username"]
        if username not in self.principals:
            self.principals.append(username)
        for ip in caller.ips:
            if ip not in self.source_ips:
                self.source_ips.append(ip)
        return event

    def echo(self, stamped: list[Stamped]) -> None:
        """Events the cluster logs because of the attack (controllers creating the attacker's pods)."""
        self.events += stamped

    def label(self) -> dict[str, Any]:
        audit_ids = list(dict.fromkeys(event["auditID"] for _, _, event in sorted(self.events, key=_by_time)))
        stamps = [stage for _, stage, _ in self.events]
        label: dict[str, Any] = {
            "scenario": self.name,
            "cluster": self.world.cluster.name,
            "start": rfc3339(min(stamps)),
            "end": rfc3339(max(stamps)),
            "principals": self.principals,
            "sourceIPs": self.source_ips,
            "findingTypes": sorted(self.expected),
            "expected": [{"type": t, "auditIDs": ids_} for t, ids_ in sorted(self.expected.items())],
            "auditIDs": audit_ids,
        }
        if self.threat_ips:
            label["threatIPs"] = self.threat_ips
        return label


def _by_time(item: Stamped) -> int:
    return item[1]


def _external_ip(rng: random.Random, prefix: str) -> str:
    """An address inside ``prefix`` (one to three leading octets), the rest drawn at random."""
    missing = 4 - len(prefix.split("."))
    return ".".join([prefix, *(str(rng.randrange(1, 255)) for _ in range(missing))])


def _tester(book: Playbook, ip: str | None = None) -> Caller:
    """The GuardDuty tester's EC2 instance, whose role is mapped to ``system:masters``."""
    rng = book.rng
    instance = f"i-0{rng.getrandbits(64):016x}"
    user = ids.iam_user(f"arn:aws:iam::{ids.ACCOUNT}:role/GuardDutyTesterInstanceRole",
                        "GuardDutyTesterInstanceRole", instance, ids.principal_id(rng), ids.access_key_id(rng),
                        ["system:masters", "system:authenticated"])
    return Caller(user, [ip or f"10.0.200.{rng.randrange(2, 254)}"], ids.KUBECTL_LINUX)


def _human(world: World, handle: str) -> Human:
    return next(h for h in world.cluster.humans if h.handle == handle)


def _stolen(book: Playbook, human: Human, ip: str, agent: str) -> Caller:
    """``human``'s identity in someone else's hands: a fresh session key, a new address and client."""
    user = ids.iam_user(human.username, human.role, human.username if "@" in human.username else human.handle,
                        human.principal_id, ids.access_key_id(book.rng), [*human.groups, "system:authenticated"])
    return Caller(user, [ip], agent)


def _create(kind_plural: str, obj: dict[str, Any], group: str = "", namespace: str = "") -> Request:
    return Request("create", kind_plural, namespace, obj["metadata"]["name"], group=group,
                   query="fieldManager=kubectl-create&fieldValidation=Strict", request_object=obj)


def _discover(book: Playbook, caller: Caller, *raises: str) -> None:
    for path in ("/api", "/apis"):
        book.do(caller, Request("get", path=path, query="timeout=32s"), *raises, gap=(5_000, 60_000))


def _deploy(book: Playbook, caller: Caller, namespace: str, name: str, spec: dict[str, Any],
            *raises: str) -> dict[str, Any]:
    deployment = k8s.deployment(namespace, name, spec, 1)
    event = book.do(caller, _create("deployments", deployment, "apps", namespace), *raises)
    echo, _, _ = deployment_rollout(book.factory, book.world.directory, book.at, namespace, name, spec, 1, [],
                                    event["responseObject"]["metadata"]["uid"])
    book.echo(echo)
    return event


def _can_i(book: Playbook, caller: Caller, checks: tuple[tuple[str, str, str, str, str], ...], binding: str) -> None:
    """``kubectl auth can-i`` for each (verb, resource, namespace, group, subresource), allowed by ``binding``."""
    for verb, resource, namespace, group, subresource in checks:
        review = k8s.access_review(verb, resource, namespace, group, subresource)
        answer = k8s.access_review(verb, resource, namespace, group, subresource, allowed=True,
                                   reason=f'RBAC: allowed by ClusterRoleBinding "{binding}"')
        book.do(caller, Request("create", "selfsubjectaccessreviews", group="authorization.k8s.io",
                                request_object=review, response_object=answer), PERMISSION_CHECKED)


# -- the GuardDuty tester ------------------------------------------------------------------------------

def anonymous_access(book: Playbook) -> None:
    tester = _tester(book)
    rules = [k8s.policy_rule(["get", "list", "watch"], ["pods"])]
    reader = k8s.role("ClusterRole", "anonymous-pod-reader", None, rules)
    book.do(tester, _create("clusterroles", reader, RBAC))
    grant = k8s.binding("ClusterRoleBinding", "anonymous-pod-reader", None, "ClusterRole", "anonymous-pod-reader",
                        [k8s.subject("User", "system:anonymous")])
    book.do(tester, _create("clusterrolebindings", grant, RBAC), ANONYMOUS_GRANTED)
    anonymous = Caller(ids.anonymous(), [_external_ip(book.rng, "3.91")], ids.CURL,
                       reason='RBAC: allowed by ClusterRoleBinding "anonymous-pod-reader" of ClusterRole '
                              '"anonymous-pod-reader" to User "system:anonymous"')
    book.do(anonymous, Request("list", "pods", "default"), ANONYMOUS_ACCESS, gap=(20 * SECOND, 90 * SECOND))
    book.do(tester, Request("delete", "clusterrolebindings", name="anonymous-pod-reader", group=RBAC),
            gap=(30 * SECOND, 120 * SECOND))


def exec_kube_system(book: Playbook) -> None:
    tester = _tester(book)
    pod = book.rng.choice(book.world.cluster.system_pods["kube-proxy"])
    book.do(tester, Request("get", "pods", "kube-system", pod))
    book.do(tester, Request("create", "pods", "kube-system", pod, "exec",
                            query="command=ls&container=kube-proxy&stderr=true&stdout=true",
                            duration=2 * SECOND), EXEC_KUBE_SYSTEM)


def admin_default_sa(book: Playbook) -> None:
    tester = _tester(book)
    masters = k8s.subject("Group", "system:masters")
    default_sa = k8s.subject("ServiceAccount", "default", "default")
    book.do(tester, Request("get", "clusterrolebindings", name="cluster-admin", group=RBAC))
    binding = k8s.binding("ClusterRoleBinding", "cluster-admin", None, "ClusterRole", "cluster-admin",
                          [masters, default_sa])
    patched = k8s.stored(binding, uid(book.rng), book.at // 1000, book.at - 400 * DAY)
    book.do(tester, Request("patch", "clusterrolebindings", name="cluster-admin", group=RBAC,
                            query="fieldManager=kubectl-patch",
                            request_object=[{"op": "add", "path": "/subjects/1", "value": default_sa}],
                            response_object=patched), ADMIN_DEFAULT_SA)


def exposed_dashboard(book: Playbook) -> None:
    tester = _tester(book)
    namespace = name = "kubernetes-dashboard"
    book.do(tester, Request("get", "services", namespace, name))
    exposed = k8s.service(namespace, name, "LoadBalancer", 443, 8443, {"k8s-app": name})
    book.do(tester, Request("patch", "services", namespace, name, query="fieldManager=kubectl-patch",
                            request_object={"spec": {"type": "LoadBalancer"}},
                            response_object=k8s.stored(exposed, uid(book.rng), book.at // 1000, book.at)),
            EXPOSED_DASHBOARD)


def privileged_container(book: Playbook) -> None:
    tester = _tester(book)
    spec = k8s.pod_spec([k8s.container("ubuntu", "public.ecr.aws/lts/ubuntu:22.04", command=["sleep", "3600"],
                                       privileged=True)])
    book.do(tester, _create("pods", k8s.pod("default", "ubuntu-privileged", spec), namespace="default"), PRIVILEGED)


def sensitive_mount(book: Playbook) -> None:
    tester = _tester(book)
    spec = k8s.pod_spec([k8s.container("nginx", "public.ecr.aws/nginx/nginx:1.25", hardened=False,
                                       mounts=[k8s.mount("test-volume", "/test-pd")])],
                        volumes=[k8s.host_path_volume("test-volume", "/etc")])
    _deploy(book, tester, "default", "nginx-sensitive-mount", spec, SENSITIVE_MOUNT)


def tor_caller(book: Playbook) -> None:
    tor_ip = _external_ip(book.rng, "185.220.101")
    account = ids.service_account("default", "guardduty-tester", book.rng)
    caller = Caller(account, [tor_ip], ids.KUBECTL_LINUX,
                    reason='RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
                           '"system:discovery" to Group "system:authenticated"')
    book.threat_ips["tor"] = [tor_ip]
    book.do(caller, Request("get", path="/api", query="timeout=32s"), TOR_DISCOVERY)


def custom_threat_ip(book: Playbook) -> None:
    listed_ip = _external_ip(book.rng, "198.51.100")
    tester = _tester(book, listed_ip)
    book.threat_ips["custom"] = [listed_ip]
    _discover(book, tester, CUSTOM_DISCOVERY)
    account = k8s.service_account_object("default", "guardduty-tester-sa")
    book.do(tester, _create("serviceaccounts", account, namespace="default"), CUSTOM_IMPACT)


# -- intrusions ----------------------------------------------------------------------------------------

def stolen_kubeconfig(book: Playbook) -> None:
    """bob's kubeconfig and session used from a VPS: secrets everywhere, exec, cluster-admin, privileged pod."""
    world = book.world
    attacker = _stolen(book, _human(world, "bob"), _external_ip(book.rng, "167.99"), ids.KUBECTL_ATTACKER)
    _discover(book, attacker)
    book.do(attacker, Request("list", "namespaces", query="limit=500"))
    book.do(attacker, Request("list", "secrets", query="limit=500"), SECRETS_ACCESSED)
    targets = [app for app in world.cluster.apps if app.namespace != "shop"]
    for app in book.rng.sample(targets, 4):
        book.do(attacker, Request("get", "secrets", app.namespace, app.secrets[0]), SECRETS_ACCESSED)
    for app in book.rng.sample(targets, 2):
        pod = book.rng.choice(app.pods)
        book.do(attacker, Request("create", "pods", app.namespace, pod, "exec",
                                  query=f"command=sh&container={app.name}&stdin=true&stdout=true&tty=true",
                                  duration=book.rng.randrange(30, 300) * SECOND), EXEC_IN_POD)
    grant = k8s.binding("ClusterRoleBinding", "system:node-exporter-admin", None, "ClusterRole", "cluster-admin",
                        [k8s.subject("ServiceAccount", "node-exporter", "kube-system")])
    book.do(attacker, _create("clusterrolebindings", grant, RBAC), BINDING_CREATED)
    spec = k8s.pod_spec([k8s.container("debug", "docker.io/library/alpine:3.19", command=["sleep", "infinity"],
                                       privileged=True)], host_pid=True, host_network=True)
    _deploy(book, attacker, "default", "node-debugger", spec, DEPLOYED_PRIVILEGED, PRIVILEGED)


def compromised_ci(book: Playbook) -> None:
    """The Jenkins deployer token used by hand: a cluster-admin binding and a privileged kube-system workload."""
    world = book.world
    jenkins = next(p for p in world.cluster.pipelines if p.name == "jenkins")
    _, _, namespace, name = jenkins.username.split(":")
    own = world.directory.account(namespace, name, ids.HELM, jenkins.ips[0])
    attacker = Caller(own.user, own.ips, ids.KUBECTL_ATTACKER)
    _discover(book, attacker)
    grant = k8s.binding("ClusterRoleBinding", "jenkins-deployer-cluster-admin", None, "ClusterRole", "cluster-admin",
                        [k8s.subject("ServiceAccount", name, namespace)])
    book.do(attacker, _create("clusterrolebindings", grant, RBAC), BINDING_CREATED)
    spec = k8s.pod_spec([k8s.container("agent", "ghcr.io/kube-ops/metrics-agent:0.3.1", privileged=True,
                                       command=["/bin/sh", "-c", "sleep infinity"])], host_pid=True)
    _deploy(book, attacker, "kube-system", "kube-metrics-agent", spec, DEPLOYED_PRIVILEGED, PRIVILEGED)


def secret_harvesting(book: Playbook) -> None:
    """Prometheus's token, taken from its pod, listing the secrets of every namespace."""
    prometheus = book.world.directory.account("monitoring", "prometheus", "Prometheus/2.51.1")
    attacker = Caller(prometheus.user, prometheus.ips, ids.CURL)
    for namespace in book.world.cluster.namespaces:
        book.do(attacker, Request("list", "secrets", namespace), SECRETS_ACCESSED, gap=(50_000, 900_000))


def cryptominer(book: Playbook) -> None:
    """A poisoned deploy workflow: a miner DaemonSet mounting the host's root, and a miner Deployment."""
    world = book.world
    actions = next(p for p in world.cluster.pipelines if p.name == "github-actions")
    user = ids.iam_user(actions.username, actions.role, "GitHubActions", actions.principal_id,
                        ids.access_key_id(book.rng), ["deployers", "system:authenticated"])
    caller = Caller(user, [book.rng.choice(actions.ips)], ids.KUBECTL_LINUX)
    miner_args = ["-o", "stratum+tcp://pool.supportxmr.com:3333", "-u", "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33D",
                  "--donate-level", "1", "--threads", "4"]
    spec = k8s.pod_spec([k8s.container("monitor", "docker.io/metal3d/xmrig:latest", command=["xmrig"],
                                       args=miner_args, hardened=False, mounts=[k8s.mount("host", "/host")])],
                        volumes=[k8s.host_path_volume("host", "/")])
    daemon_set = k8s.daemon_set("shop", "node-monitor", spec)
    event = book.do(caller, _create("daemonsets", daemon_set, "apps", "shop"), DEPLOYED_SENSITIVE, SENSITIVE_MOUNT)
    book.echo(daemon_set_rollout(book.factory, world.directory, book.at, "shop", "node-monitor", spec,
                                 event["responseObject"]["metadata"]["uid"]))
    plain = k8s.pod_spec([k8s.container("optimizer", "docker.io/metal3d/xmrig:latest", command=["xmrig"],
                                        args=miner_args, hardened=False)])
    _deploy(book, caller, "shop", "cache-optimizer", plain, DEPLOYED)


def rbac_backdoor(book: Playbook) -> None:
    """dave, from his usual desk, leaves a wildcard ClusterRole bound to a spare user and checks his reach."""
    dave = _human(book.world, "dave")
    user = ids.iam_user(dave.username, dave.role, dave.username, dave.principal_id, ids.access_key_id(book.rng),
                        [*dave.groups, "system:authenticated"])
    caller = Caller(user, [dave.ips[0]], dave.agent)
    everything = k8s.role("ClusterRole", "system:metrics-aggregator", None, [k8s.policy_rule(["*"], ["*"], ["*"])])
    book.do(caller, _create("clusterroles", everything, RBAC), ROLE_CREATED)
    grant = k8s.binding("ClusterRoleBinding", "system:metrics-aggregator", None, "ClusterRole",
                        "system:metrics-aggregator", [k8s.subject("User", "svc-metrics")])
    book.do(caller, _create("clusterrolebindings", grant, RBAC), BINDING_CREATED)
    _can_i(book, caller, (("*", "*", "", "*", ""), ("create", "pods", "kube-system", "", "exec"),
                          ("impersonate", "users", "", "", "")), "system:metrics-aggregator")


def compromised_credentials(book: Playbook) -> None:
    """erin's credentials from a hosting provider with a Python client: the whole chain of a cluster takeover.

    Secrets read, permissions checked, a shell in a pod, a wildcard ClusterRole bound to her, a privileged
    miner and a DaemonSet mounting every node's root: what one ``AttackSequence:EKS/CompromisedCluster``
    must tie together.
    """
    world = book.world
    erin = _human(world, "erin")
    attacker = _stolen(book, erin, _external_ip(book.rng, "45.148"), ids.PYTHON_CLIENT)
    _discover(book, attacker)
    book.do(attacker, Request("list", "secrets", query="limit=500"), SECRETS_ACCESSED)
    for app in book.rng.sample([a for a in world.cluster.apps if a.namespace in ("data", "search")], 2):
        book.do(attacker, Request("get", "secrets", app.namespace, app.secrets[0]), SECRETS_ACCESSED)
    _can_i(book, attacker, (("create", "clusterrolebindings", "", RBAC, ""),
                            ("create", "pods", "kube-system", "", "exec")), "data-engineers")
    app = next(a for a in world.cluster.apps if a.namespace == "data")
    book.do(attacker, Request("create", "pods", app.namespace, book.rng.choice(app.pods), "exec",
                              query=f"command=sh&container={app.name}&stdin=true&stdout=true&tty=true",
                              duration=90 * SECOND), EXEC_IN_POD)
    everything = k8s.role("ClusterRole", "system:kube-metrics", None, [k8s.policy_rule(["*"], ["*"], ["*"])])
    book.do(attacker, _create("clusterroles", everything, RBAC), ROLE_CREATED)
    grant = k8s.binding("ClusterRoleBinding", "system:kube-metrics", None, "ClusterRole", "system:kube-metrics",
                        [k8s.subject("ServiceAccount", "default", "data")])
    book.do(attacker, _create("clusterrolebindings", grant, RBAC), BINDING_CREATED, ADMIN_DEFAULT_SA)
    miner_args = ["-o", "stratum+tcp://xmr.pool.example:443", "--threads", "8"]
    miner = k8s.pod_spec([k8s.container("miner", "docker.io/metal3d/xmrig:latest", command=["xmrig"],
                                        args=miner_args, privileged=True)])
    _deploy(book, attacker, "data", "metrics-cache", miner, DEPLOYED_PRIVILEGED, PRIVILEGED)
    spec = k8s.pod_spec([k8s.container("node-agent", "docker.io/library/alpine:3.19", command=["sleep", "infinity"],
                                       hardened=False, mounts=[k8s.mount("host", "/host")])],
                        volumes=[k8s.host_path_volume("host", "/")])
    daemon_set = k8s.daemon_set("data", "node-agent", spec)
    event = book.do(attacker, _create("daemonsets", daemon_set, "apps", "data"), DEPLOYED_SENSITIVE, SENSITIVE_MOUNT)
    book.echo(daemon_set_rollout(book.factory, world.directory, book.at, "data", "node-agent", spec,
                                 event["responseObject"]["metadata"]["uid"]))


Scenario = Callable[[Playbook], None]

TESTER: dict[str, Scenario] = {
    "anonymous-access": anonymous_access,
    "exec-kube-system": exec_kube_system,
    "admin-default-sa": admin_default_sa,
    "exposed-dashboard": exposed_dashboard,
    "privileged-container": privileged_container,
    "sensitive-mount": sensitive_mount,
    "tor-caller": tor_caller,
    "custom-threat-ip": custom_threat_ip,
}
INTRUSIONS: dict[str, Scenario] = {
    "stolen-kubeconfig": stolen_kubeconfig,
    "compromised-ci": compromised_ci,
    "secret-harvesting": secret_harvesting,
    "cryptominer": cryptominer,
    "rbac-backdoor": rbac_backdoor,
    "compromised-credentials": compromised_credentials,
}
SCENARIOS: dict[str, Scenario] = {**TESTER, **INTRUSIONS}


def resolve(names: list[str] | str) -> list[str]:
    """Scenario names from ``all``, ``none``, ``guardduty-tester`` or a list; unknown names are errors."""
    requested = names.split(",") if isinstance(names, str) else list(names)
    chosen: list[str] = []
    for name in (n.strip() for n in requested):
        if name in ("", "none"):
            continue
        expanded = list(SCENARIOS) if name == "all" else list(TESTER) if name == "guardduty-tester" else [name]
        for item in expanded:
            if item not in SCENARIOS:
                raise ValueError(f"unknown attack scenario {item!r}; known: {', '.join(SCENARIOS)}")
            if item not in chosen:
                chosen.append(item)
    return chosen


def play(name: str, world: World, at: int) -> tuple[list[Stamped], dict[str, Any]]:
    """Run scenario ``name`` in ``world`` from ``at``; returns its events and its label."""
    book = Playbook(name, world, at, world.rng(f"attack:{name}"))
    SCENARIOS[name](book)
    return book.events, book.label()

