"""The simulated estate: clusters, their nodes, namespaces and apps, and the people and pipelines using them.

The roster is fixed (so a reader of the output can recognise ``bob`` or the GitHub Actions role) and
the details that should differ between seeds and clusters (addresses, pod names, instance ids) are
drawn from the cluster's own random generator.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from kubeguard.sim import identities as ids

_POD_SUFFIX = string.ascii_lowercase + string.digits
_HASH = "bcdfghjklmnpqrstvwxz2456789"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")


def pod_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(_POD_SUFFIX) for _ in range(length))


def template_hash(rng: random.Random) -> str:
    """A ReplicaSet's pod-template-hash: ten characters of the API server's safe alphabet."""
    return "".join(rng.choice(_HASH) for _ in range(10))


def image_tag(rng: random.Random) -> str:
    return f"sha-{rng.getrandbits(28):07x}"


@dataclass(slots=True)
class App:
    """A Deployment run by a team; ``pods`` follow its current ReplicaSet."""

    namespace: str
    name: str
    repository: str
    tag: str
    replicas: int
    port: int
    secrets: list[str]
    configmaps: list[str]
    pods: list[str] = field(default_factory=list)
    replica_set: str = ""
    uid: str = ""

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(slots=True)
class Node:
    name: str
    instance_id: str
    ip: str
    principal_id: str


@dataclass(slots=True)
class Human:
    """An operator and their habits: where, when and how they work, and what they touch."""

    handle: str
    username: str
    role: str
    groups: list[str]
    namespaces: list[str]
    utc_offset: int
    hours: tuple[int, int]
    ips: list[str]
    agent: str
    sessions_per_day: float
    #: Chance that a command is a secrets read; zero for people who never do it.
    secrets_habit: float
    exec_habit: float
    admin: bool = False
    principal_id: str = ""


@dataclass(slots=True)
class Pipeline:
    """A deploy pipeline: who it runs as, with which tool, for which apps, how often."""

    name: str
    namespace: str
    username: str
    tool: str
    apps: list[App]
    ips: list[str]
    deploys_per_day: float
    utc_offset: int = 0
    role: str = ""
    principal_id: str = ""
    #: In-cluster service accounts authenticate with a token; pipelines outside assume an IAM role.
    in_cluster: bool = True


@dataclass(slots=True)
class Cluster:
    name: str
    region: str
    nodes: list[Node]
    apps: list[App]
    humans: list[Human]
    pipelines: list[Pipeline]
    #: kube-system pods by component (``kube-proxy``, ``coredns``, ...).
    system_pods: dict[str, list[str]]
    namespaces: list[str]

    def apps_in(self, namespaces: list[str]) -> list[App]:
        return [app for app in self.apps if app.namespace in namespaces]


_TEAMS: dict[str, list[tuple[str, int]]] = {
    "shop": [("frontend", 3), ("cart", 2), ("checkout", 2)],
    "payments": [("payments-api", 3), ("ledger", 2)],
    "search": [("search-api", 2), ("indexer", 1)],
    "data": [("etl-worker", 2)],
}
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", "default"]
ADDON_NAMESPACES = ["kubernetes-dashboard", "monitoring", "ingress-nginx", "cert-manager", "argocd",
                    "jenkins", "velero", "external-secrets"]


def _public_ip(rng: random.Random, prefix: str) -> str:
    return f"{prefix}.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"


def build_humans(rng: random.Random) -> list[Human]:
    """The people; built once for the whole fleet, because the same person uses every cluster."""
    office = [_public_ip(rng, "52.94"), _public_ip(rng, "52.94")]
    vpn = _public_ip(rng, "34.120")
    dev_role = f"arn:aws:iam::{ids.ACCOUNT}:role/developers"
    all_apps = list(_TEAMS)
    humans = [
        Human("alice", "alice@example.com", "AWSReservedSSO_PlatformAdmin_5f3c2a", ["platform-admins"],
              [*all_apps, "kube-system", "monitoring", "ingress-nginx", "cert-manager"], -5, (8, 17),
              [office[0], vpn], ids.KUBECTL_MAC, 2.0, 0.03, 0.02, admin=True),
        Human("bob", dev_role, "developers", ["developers"], ["shop"], -5, (9, 18), [office[0]],
              ids.KUBECTL_MAC, 2.5, 0.0, 0.04),
        Human("carol", dev_role, "developers", ["developers"], ["payments"], -8, (9, 17), [office[1]],
              ids.KUBECTL_LINUX, 2.0, 0.0, 0.03),
        Human("dave", "dave@example.com", "sre", ["sre"], ["shop", "payments", "search", "monitoring",
              "ingress-nginx"], 1, (7, 16), [vpn, office[1]], ids.KUBECTL_LINUX, 3.0, 0.01, 0.06),
        Human("erin", "erin@example.com", "data-engineers", ["data-engineers"], ["data", "search"], 1,
              (9, 18), [_public_ip(rng, "34.89")], ids.KUBECTL_WINDOWS, 1.5, 0.0, 0.02),
    ]
    for human in humans:
        human.principal_id = ids.principal_id(rng)
    return humans


def _apps(rng: random.Random, region: str) -> list[App]:
    registry = f"{ids.ACCOUNT}.dkr.ecr.{region}.amazonaws.com"
    apps = []
    for namespace, members in _TEAMS.items():
        for name, replicas in members:
            app = App(namespace, name, f"{registry}/{namespace}/{name}", image_tag(rng), replicas,
                      rng.choice((8080, 8000, 3000, 9090)), [f"{name}-db", f"{name}-tls"],
                      [f"{name}-config"])
            app.replica_set = f"{name}-{template_hash(rng)}"
            app.uid = ids.uid(rng)
            app.pods = [f"{app.replica_set}-{pod_suffix(rng)}" for _ in range(replicas)]
            apps.append(app)
    return apps


def _pipelines(rng: random.Random, apps: list[App]) -> list[Pipeline]:
    by_ns = {ns: [a for a in apps if a.namespace == ns] for ns in _TEAMS}
    github = [_public_ip(rng, prefix) for prefix in ("20.42", "20.57", "40.84", "13.64", "20.163", "52.238")]
    return [
        Pipeline("github-actions", "shop", f"arn:aws:iam::{ids.ACCOUNT}:role/github-actions-deploy", "kubectl",
                 by_ns["shop"], github, 4.0, -5, role="github-actions-deploy", principal_id=ids.principal_id(rng),
                 in_cluster=False),
        Pipeline("argocd", "argocd", "system:serviceaccount:argocd:argocd-application-controller", "argocd",
                 by_ns["payments"] + by_ns["search"], [f"10.0.{rng.randrange(32, 63)}.{rng.randrange(2, 254)}"],
                 5.0, 0),
        Pipeline("jenkins", "jenkins", "system:serviceaccount:jenkins:jenkins-deployer", "helm",
                 by_ns["data"], [f"10.0.{rng.randrange(32, 63)}.{rng.randrange(2, 254)}"], 2.0, 1),
    ]


def build_cluster(name: str, index: int, rng: random.Random, humans: list[Human]) -> Cluster:
    region = REGIONS[index % len(REGIONS)]
    nodes = []
    for _ in range(4 + index % 3):
        octets = (rng.randrange(0, 32), rng.randrange(2, 254))
        nodes.append(Node(f"ip-10-0-{octets[0]}-{octets[1]}.{region}.compute.internal",
                          f"i-0{rng.getrandbits(64):016x}", f"10.0.{octets[0]}.{octets[1]}", ids.principal_id(rng)))
    apps = _apps(rng, region)
    system_pods = {
        "kube-proxy": [f"kube-proxy-{pod_suffix(rng)}" for _ in nodes],
        "aws-node": [f"aws-node-{pod_suffix(rng)}" for _ in nodes],
        "coredns": [f"coredns-{template_hash(rng)}-{pod_suffix(rng)}" for _ in range(2)],
        "ebs-csi-controller": [f"ebs-csi-controller-{template_hash(rng)}-{pod_suffix(rng)}"],
    }
    namespaces = SYSTEM_NAMESPACES + ADDON_NAMESPACES + list(_TEAMS)
    return Cluster(name, region, nodes, apps, humans, _pipelines(rng, apps), system_pods, namespaces)
