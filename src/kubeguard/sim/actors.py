"""The machines of a cluster: control plane, informers, kubelets, add-ons and CronJobs.

They make the bulk of any real audit log and their habits are rigid (the same verbs on the same
resources at the same pace), which is what a baseline has to learn before anything human stands out.
Their pace is multiplied by the simulator's ``scale``; the habits of people and pipelines are not.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from kubeguard.sim import identities as ids
from kubeguard.sim import objects as k8s
from kubeguard.sim.clock import DAY, HOUR, MINUTE, SECOND
from kubeguard.sim.cluster import Cluster
from kubeguard.sim.directory import Directory
from kubeguard.sim.events import Caller, EventFactory, Request, Stamped
from kubeguard.sim.identities import uid
from kubeguard.sim.rollout import job_run
from kubeguard.sim.schedule import Chore, run_chores

COORDINATION = "coordination.k8s.io"


@dataclass(slots=True)
class World:
    """What every actor of one cluster shares: the estate, its identities, the time span and the pace."""

    cluster: Cluster
    directory: Directory
    start: int
    end: int
    scale: float
    seed: int

    def rng(self, name: str) -> random.Random:
        """An actor's own generator: seeded by name, so adding an actor never shifts another's output."""
        return random.Random(f"{self.seed}:{self.cluster.name}:{name}")

    def pace(self, period: int) -> int:
        return max(SECOND, int(period / self.scale))


def watch_query(rng: random.Random, selector: str = "") -> tuple[str, int]:
    """The query string of an informer's watch, and how long the server keeps it open (microseconds)."""
    seconds = rng.randrange(300, 600)
    query = (f"allowWatchBookmarks=true&resourceVersion={rng.randrange(10**6, 10**8)}"
             f"&timeout={seconds // 60}m{seconds % 60}s&timeoutSeconds={seconds}&watch=true")
    return (f"{selector}&{query}" if selector else query), seconds * SECOND


def _informers(world: World) -> list[tuple[Caller, str, str, str, str]]:
    """(caller, resource, group, namespace, selector) of every long-lived watch in the cluster."""
    d = world.directory
    kcm = Caller(d.controller_manager.user, ["127.0.0.1"], f"{ids.CONTROLLER_MANAGER}/shared-informers")
    sched = d.scheduler
    watches = [(kcm, res, grp, "", "") for res, grp in (
        ("pods", ""), ("nodes", ""), ("services", ""), ("secrets", ""), ("serviceaccounts", ""),
        ("namespaces", ""), ("deployments", "apps"), ("replicasets", "apps"), ("daemonsets", "apps"),
        ("jobs", "batch"), ("cronjobs", "batch"), ("endpointslices", "discovery.k8s.io"))]
    watches += [(sched, "pods", "", "", "fieldSelector=" + quote("status.phase!=Succeeded,status.phase!=Failed")),
                (sched, "nodes", "", "", ""), (sched, "persistentvolumeclaims", "", "", "")]
    coredns = d.account("kube-system", "coredns", f"coredns/v1.11.1 (linux/amd64) kubernetes/{ids.K8S_COMMIT}")
    watches += [(coredns, res, grp, "", "") for res, grp in (
        ("services", ""), ("endpointslices", "discovery.k8s.io"), ("namespaces", ""))]
    prom = d.account("monitoring", "prometheus", "Prometheus/2.51.1")
    watches += [(prom, res, "", "", "") for res in ("pods", "services", "endpoints", "nodes")]
    ingress = d.account("ingress-nginx", "ingress-nginx", "nginx-ingress-controller/v1.10.0 (linux/amd64) "
                        "ingress-nginx/71f78d49f0a496c31d4c19f095469f3f23900f8a")
    watches += [(ingress, res, grp, "", "") for res, grp in (
        ("ingresses", "networking.k8s.io"), ("services", ""), ("secrets", ""), ("endpointslices", "discovery.k8s.io"))]
    certs = d.account("cert-manager", "cert-manager", "cert-manager-certificates-trigger/v1.14.4 (linux/amd64) "
                      "cert-manager/f4e9c8f0e2dbe2d5cc19c9e4d5a3e7b52c25b3d4")
    watches += [(certs, "secrets", "", "", "labelSelector=" + quote("controller.cert-manager.io/fao=true")),
                (certs, "certificates", "cert-manager.io", "", "")]
    for node in world.cluster.nodes:
        kubelet = d.nodes[node.name]
        watches += [(kubelet, "pods", "", "", "fieldSelector=" + quote(f"spec.nodeName={node.name}")),
                    (kubelet, "nodes", "", "", "fieldSelector=" + quote(f"metadata.name={node.name}")),
                    (kubelet, "services", "", "", "")]
        proxy = Caller(kubelet.user, kubelet.ips, f"kube-proxy/{ids.EKS_BUILD} (linux/amd64) kubernetes/ae9a62a")
        watches += [(proxy, "endpointslices", "discovery.k8s.io", "", "labelSelector="
                     + quote("!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"))]
    return watches


def informers(world: World) -> Iterator[Stamped]:
    """Every informer re-opening its watch when the server times it out, for the whole span."""
    rng = world.rng("informers")
    factory = EventFactory(rng)
    chores = []
    for caller, resource, group, namespace, selector in _informers(world):
        def reopen(at: int, caller: Caller = caller, resource: str = resource, group: str = group,
                   namespace: str = namespace, selector: str = selector) -> list[Stamped]:
            query, lasts = watch_query(rng, selector)
            return factory.emit(at, caller, Request("watch", resource, namespace, group=group, query=query,
                                                    duration=lasts))
        chores.append(Chore(450 * SECOND, reopen, jitter=0.33))
    return run_chores(rng, world.start, world.end, chores)


def control_plane(world: World) -> Iterator[Stamped]:
    """Leader election, the autoscaler's scale checks, and EKS's node manager reading aws-auth."""
    rng = world.rng("control-plane")
    factory = EventFactory(rng)
    d = world.directory
    chores = []
    for component, caller in (("kube-controller-manager", d.controller_manager),
                              ("kube-scheduler", Caller(d.scheduler.user, ["127.0.0.1"],
                                                        f"{ids.SCHEDULER}/leader-election"))):
        def renew(at: int, component: str = component, caller: Caller = caller) -> list[Stamped]:
            holder = f"ip-172-16-{rng.randrange(0, 3)}-11.ec2.internal_{uid(rng)}"
            body = k8s.lease("kube-system", component, holder, at, 15)
            return (factory.emit(at, caller, Request("get", "leases", "kube-system", component, group=COORDINATION,
                                                     query="timeout=5s"))
                    + factory.emit(at + rng.randrange(2000, 9000), caller, Request(
                        "update", "leases", "kube-system", component, group=COORDINATION, query="timeout=5s",
                        request_object=body, response_object=body)))
        chores.append(Chore(world.pace(MINUTE), renew))
    hpa = d.controller("horizontal-pod-autoscaler")
    for app in world.cluster.apps[::2]:
        def autoscale(at: int, namespace: str = app.namespace, name: str = app.name) -> list[Stamped]:
            selector = "labelSelector=" + quote(f"app={name}")
            return (factory.emit(at, hpa, Request("get", "deployments", namespace, name, "scale", group="apps"))
                    + factory.emit(at + 3000, hpa, Request("list", "pods", namespace, group="metrics.k8s.io",
                                                           version="v1beta1", query=selector)))
        chores.append(Chore(world.pace(5 * MINUTE), autoscale))
    node_manager = Caller({"username": "eks:node-manager", "groups": ["system:authenticated"]},
                          ["127.0.0.1"], "eks-node-manager/v0.0.0 (linux/amd64) kubernetes/$Format")
    chores.append(Chore(10 * MINUTE, lambda at: factory.emit(at, node_manager, Request(
        "get", "configmaps", "kube-system", "aws-auth"))))
    return run_chores(rng, world.start, world.end, chores)


def kubelets(world: World) -> Iterator[Stamped]:
    """Node leases, node status, and the hourly service-account token refresh of every pod."""
    rng = world.rng("kubelets")
    factory = EventFactory(rng)
    chores = []
    for node in world.cluster.nodes:
        caller = world.directory.nodes[node.name]

        def heartbeat(at: int, node: str = node.name, caller: Caller = caller) -> list[Stamped]:
            body = k8s.lease("kube-node-lease", node, node, at, 40)
            return factory.emit(at, caller, Request("update", "leases", "kube-node-lease", node, group=COORDINATION,
                                                    query="timeout=10s", request_object=body, response_object=body))

        def node_status(at: int, node: str = node.name, caller: Caller = caller) -> list[Stamped]:
            patch = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                "lastHeartbeatTime": f"{at // SECOND}"}]}}
            return (factory.emit(at, caller, Request("get", "nodes", name=node, query="resourceVersion=0&timeout=10s"))
                    + factory.emit(at + rng.randrange(3000, 20000), caller, Request(
                        "patch", "nodes", name=node, subresource="status", query="timeout=10s",
                        request_object=patch, response_object={"kind": "Node", "apiVersion": "v1",
                                                               "metadata": {"name": node}, **patch})))
        chores += [Chore(world.pace(MINUTE), heartbeat), Chore(world.pace(5 * MINUTE), node_status)]

    def refresh_tokens(at: int) -> list[Stamped]:
        events: list[Stamped] = []
        for app in world.cluster.apps:
            for pod in app.pods:
                node = world.directory.node_for(f"{app.namespace}/{pod}")
                at += rng.randrange(50_000, 3 * SECOND)
                body = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3607,
                                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod}}}
                events += factory.emit(at, world.directory.nodes[node.name], Request(
                    "create", "serviceaccounts", app.namespace, app.name, "token", request_object=body))
        return events
    chores.append(Chore(HOUR, refresh_tokens, jitter=0.02))
    return run_chores(rng, world.start, world.end, chores)


def add_ons(world: World) -> Iterator[Stamped]:
    """Secret-handling add-ons: external-secrets syncing, cert-manager checking, Velero's nightly backup."""
    rng = world.rng("add-ons")
    factory = EventFactory(rng)
    d = world.directory
    syncer = d.account("external-secrets", "external-secrets", "external-secrets/v0.9.14")
    certs = d.account("cert-manager", "cert-manager", "cert-manager-certificates-issuing/v1.14.4")
    velero = d.account("velero", "velero", "velero-server/v1.13.1 (linux/amd64) 6e6e2b5")

    def sync(at: int) -> list[Stamped]:
        app = rng.choice(world.cluster.apps)
        secret = app.secrets[0]
        return (factory.emit(at, syncer, Request("get", "secrets", app.namespace, secret))
                + factory.emit(at + 8000, syncer, Request("update", "secrets", app.namespace, secret)))

    def check_certificate(at: int) -> list[Stamped]:
        app = rng.choice(world.cluster.apps)
        return factory.emit(at, certs, Request("get", "secrets", app.namespace, app.secrets[1]))

    def backup(at: int) -> list[Stamped]:
        events: list[Stamped] = []
        for namespace in world.cluster.namespaces:
            for resource, group in (("pods", ""), ("secrets", ""), ("configmaps", ""), ("deployments", "apps"),
                                    ("services", ""), ("serviceaccounts", "")):
                at += rng.randrange(20_000, 400_000)
                events += factory.emit(at, velero, Request("list", resource, namespace, group=group,
                                                           query="limit=500"))
        return events

    night = world.start - world.start % DAY + DAY + HOUR  # 01:00 UTC, Velero's schedule
    chores = [Chore(world.pace(6 * MINUTE), sync, random_arrivals=True),
              Chore(world.pace(20 * MINUTE), check_certificate, random_arrivals=True)]
    return _merge_nightly(run_chores(rng, world.start, world.end, chores), backup, night, world.end)


def _merge_nightly(stream: Iterator[Stamped], nightly, first: int, end: int) -> Iterator[Stamped]:
    """Splice a once-a-day job into a chore stream at a fixed time of day."""
    due = first
    for item in stream:
        while due <= item[0] and due < end:
            yield from nightly(due)
            due += DAY
        yield item


def cron_jobs(world: World) -> Iterator[Stamped]:
    """Two CronJobs: an hourly cache warmer in ``shop`` and a nightly report in ``data``."""
    rng = world.rng("cron-jobs")
    factory = EventFactory(rng)
    registry = world.cluster.apps[0].repository.split("/", 1)[0]
    plans = [("shop", "cache-warmer", HOUR, f"{registry}/shop/cache-warmer:1.4.2", 40 * SECOND),
             ("data", "nightly-report", DAY, f"{registry}/data/report:2.0.1", 25 * MINUTE)]
    chores = []
    for namespace, name, period, image, runtime in plans:
        cron_uid = uid(rng)
        spec = k8s.pod_spec([k8s.container(name, image, command=["/app/run"])], service_account=name,
                            restart_policy="OnFailure")

        def fire(at: int, namespace: str = namespace, name: str = name, spec: dict = spec,
                 cron_uid: str = cron_uid, runtime: int = runtime) -> list[Stamped]:
            job_name = f"{name}-{at // MINUTE}"
            return job_run(factory, world.directory, at, namespace, job_name, spec, cron_uid, runtime)
        on_the_hour = world.start - world.start % period + period + rng.randrange(SECOND)
        chores.append(Chore(period, fire, jitter=0.0, first=on_the_hour))
    return run_chores(rng, world.start, world.end, chores)
