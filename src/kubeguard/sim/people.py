"""People and pipelines: the actors whose habits anomaly detection learns.

An operator works on weekdays in their own hours, from one or two addresses, with one kubectl build,
in their own namespaces; most of what they do is reading, with a habit-specific share of secrets reads
and ``exec``. A deploy pipeline runs on weekdays and changes the image of the Deployments it owns with
its own tool (kubectl, Argo CD's server-side apply, Helm with its release secrets).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson

from kubeguard.sim import identities as ids
from kubeguard.sim import objects as k8s
from kubeguard.sim.actors import World
from kubeguard.sim.clock import DAY, HOUR, MINUTE, SECOND, local_midnight, local_weekday, rfc3339_seconds
from kubeguard.sim.cluster import App, Human, Pipeline, image_tag
from kubeguard.sim.events import Caller, EventFactory, Request, Stamped
from kubeguard.sim.rollout import deployment_rollout

DISCOVERY = ("/api", "/apis")


def app_spec(app: App) -> dict[str, Any]:
    """The pod template every team's Deployment uses: one hardened container with its config mounted."""
    main = k8s.container(app.name, app.image, ports=[app.port], mounts=[k8s.mount("config", "/etc/app", True)])
    volumes = [{"name": "config", "configMap": {"name": app.configmaps[0], "defaultMode": 420}}]
    return k8s.pod_spec([main], service_account=app.name, volumes=volumes)


def app_deployment(app: App, at: int, generation: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment as a client sends it and as the server returns it."""
    sent = k8s.deployment(app.namespace, app.name, app_spec(app), app.replicas)
    return sent, k8s.stored(sent, app.uid, at // 1000, at - 90 * DAY, generation)


def roll(factory: EventFactory, world: World, at: int, app: App) -> list[Stamped]:
    """The controllers' echo of a change to ``app``; moves the app to its new ReplicaSet's pods."""
    events, replica_set, pods = deployment_rollout(factory, world.directory, at, app.namespace, app.name,
                                                   app_spec(app), app.replicas, app.pods, app.uid)
    app.replica_set, app.pods = replica_set, pods
    return events


def _working_day(rng: random.Random, day: int, utc_offset: int, weekend_chance: float) -> bool:
    weekday = local_weekday(day + 12 * HOUR, utc_offset)
    return rng.random() < (0.93 if weekday < 5 else weekend_chance)


def _times_in_hours(rng: random.Random, day: int, hours: tuple[int, int], count: int) -> list[int]:
    first, last = hours
    return sorted(day + int((first + rng.random() * (last - first - 0.75)) * HOUR) for _ in range(count))


# -- operators -----------------------------------------------------------------------------------------

_READS = (("pods", "", 10.0), ("deployments", "apps", 4.0), ("events", "", 1.5), ("services", "", 1.5),
          ("replicasets", "apps", 0.8), ("ingresses", "networking.k8s.io", 0.6), ("jobs", "batch", 0.6))


def _reason(human: Human) -> str:
    if human.admin:
        return (f'RBAC: allowed by ClusterRoleBinding "{human.groups[0]}" of ClusterRole "cluster-admin" '
                f'to Group "{human.groups[0]}"')
    return (f'RBAC: allowed by RoleBinding "{human.groups[0]}-edit/{human.namespaces[0]}" of ClusterRole '
            f'"edit" to Group "{human.groups[0]}"')


def _command(rng: random.Random, human: Human, app: App, at: int) -> tuple[list[Request], bool]:
    """One kubectl command as the requests it makes; True when it restarts the app's Deployment."""
    ns = app.namespace
    draw = rng.random()
    if draw < human.secrets_habit:
        return [Request("get", "secrets", ns, rng.choice(app.secrets))], False
    draw -= human.secrets_habit
    if draw < human.exec_habit:
        pod = rng.choice(app.pods)
        command = rng.choice(("command=sh", "command=bash", "command=env",
                              "command=cat&command=%2Fetc%2Fapp%2Fconfig.yaml"))
        tty = "&stdin=true&tty=true" if command in ("command=sh", "command=bash") else ""
        return [Request("get", "pods", ns, pod),
                Request("create", "pods", ns, pod, "exec", query=f"{command}&container={app.name}&stdout=true"
                        f"&stderr=true{tty}", duration=rng.randrange(5 * SECOND, 15 * MINUTE))], False
    choice = rng.random()
    if choice < 0.06:
        return [Request("get", "configmaps", ns, app.configmaps[0])], False
    if choice < 0.12:
        pod = rng.choice(app.pods)
        return [Request("get", "pods", ns, pod),
                Request("get", "pods", ns, pod, "log", query=f"container={app.name}&tailLines=200")], False
    if choice < 0.16:
        pod = rng.choice(app.pods)
        selector = quote(f"involvedObject.name={pod},involvedObject.namespace={ns}")
        return [Request("get", "pods", ns, pod),
                Request("list", "events", ns, query=f"fieldSelector={selector}")], False
    if choice < 0.175:
        return [Request("patch", "deployments", ns, app.name, group="apps",
                        query="fieldManager=kubectl-rollout",
                        request_object={"spec": {"template": {"metadata": {"annotations": {
                            "kubectl.kubernetes.io/restartedAt": rfc3339_seconds(at)}}}}})], True
    if choice < 0.185:
        return [Request("create", "selfsubjectaccessreviews", group="authorization.k8s.io",
                        request_object=k8s.access_review("create", "deployments", ns, "apps"),
                        response_object=k8s.access_review("create", "deployments", ns, "apps", allowed=True))], False
    if choice < 0.19:
        pod = rng.choice(app.pods)
        return [Request("create", "pods", ns, pod, "portforward", query="",
                        duration=rng.randrange(MINUTE, 30 * MINUTE))], False
    if human.admin and choice < 0.26:
        return [Request("list", "nodes", query="limit=500")], False
    if choice < 0.29:
        return [Request("list", "pods", ns, group="metrics.k8s.io", version="v1beta1")], False
    resource, group, _ = rng.choices(_READS, weights=[w for _, _, w in _READS])[0]
    return [Request("list", resource, ns, group=group, query="limit=500")], False


def operator(world: World, human: Human) -> Iterator[Stamped]:
    """A person's working days on this cluster, as kubectl sessions of a few to a few dozen commands."""
    rng = world.rng(f"human:{human.handle}")
    factory = EventFactory(rng)
    apps = world.cluster.apps_in(human.namespaces) or world.cluster.apps
    groups = [*human.groups, "system:authenticated"]
    day = local_midnight(world.start, human.utc_offset)
    while day < world.end:
        if _working_day(rng, day, human.utc_offset, 0.04):
            user = ids.iam_user(human.username, human.role, human.username if "@" in human.username
                                else human.handle, human.principal_id, ids.access_key_id(rng), groups)
            sessions = max(1, round(rng.gauss(human.sessions_per_day, 0.8)))
            for at in _times_in_hours(rng, day, human.hours, sessions):
                ip = human.ips[0] if len(human.ips) == 1 or rng.random() < 0.75 else human.ips[1]
                caller = Caller(user, [ip], human.agent, reason=_reason(human))
                events = _session(world, factory, human, caller, apps, at)
                if world.start <= at < world.end:
                    yield from events
        day += DAY


def _session(world: World, factory: EventFactory, human: Human, caller: Caller, apps: list[App],
             at: int) -> list[Stamped]:
    rng = factory.rng
    events: list[Stamped] = []
    if rng.random() < 0.25:
        for path in DISCOVERY:
            at += rng.randrange(5_000, 40_000)
            events += factory.emit(at, caller, Request("get", path=path, query="timeout=32s"))
    app = rng.choice(apps)
    for _ in range(rng.randrange(4, 30)):
        at += rng.randrange(4 * SECOND, 150 * SECOND)
        if rng.random() < 0.2:
            app = rng.choice(apps)
        requests, restarts = _command(rng, human, app, at)
        for request in requests:
            at += rng.randrange(10_000, 400_000)
            events += factory.emit(at, caller, request)
        if restarts:
            events += roll(factory, world, at, app)
    return events


# -- pipelines -----------------------------------------------------------------------------------------

_AGENTS = {"kubectl": ids.KUBECTL_LINUX, "argocd": ids.ARGOCD, "helm": ids.HELM}


def _pipeline_caller(world: World, pipe: Pipeline, rng: random.Random) -> Caller:
    agent = _AGENTS[pipe.tool]
    if pipe.in_cluster:
        _, _, namespace, name = pipe.username.split(":")
        return world.directory.account(namespace, name, agent, pipe.ips[0])
    user = ids.iam_user(pipe.username, pipe.role, "GitHubActions", pipe.principal_id, ids.access_key_id(rng),
                        ["deployers", "system:authenticated"])
    return Caller(user, [rng.choice(pipe.ips)], agent,
                  reason='RBAC: allowed by RoleBinding "deployers/shop" of ClusterRole "edit" to Group "deployers"')


def pipeline(world: World, pipe: Pipeline) -> Iterator[Stamped]:
    """Weekday deploys at random times of the team's day, plus the rare weekend hotfix."""
    rng = world.rng(f"pipeline:{pipe.name}")
    factory = EventFactory(rng)
    day = local_midnight(world.start, pipe.utc_offset)
    releases = {app.name: rng.randrange(20, 200) for app in pipe.apps}
    while day < world.end:
        if _working_day(rng, day, pipe.utc_offset, 0.05):
            count = sum(1 for _ in range(12) if rng.random() < pipe.deploys_per_day / 12)
            for at in _times_in_hours(rng, day, (9, 18), count):
                app = rng.choice(pipe.apps)
                app_caller = _pipeline_caller(world, pipe, rng)
                events = _deploy(world, factory, pipe, app_caller, app, at, releases)
                if world.start <= at < world.end:
                    yield from events
        day += DAY


def _deploy(world: World, factory: EventFactory, pipe: Pipeline, caller: Caller, app: App, at: int,
            releases: dict[str, int]) -> list[Stamped]:
    rng = factory.rng
    app.tag = image_tag(rng)
    releases[app.name] += 1
    sent, returned = app_deployment(app, at, releases[app.name])
    ns, name = app.namespace, app.name
    events: list[Stamped] = []

    def call(request: Request, gap: tuple[int, int] = (20_000, 600_000)) -> None:
        nonlocal at
        at += rng.randrange(*gap)
        events.extend(factory.emit(at, caller, request))

    if pipe.tool == "kubectl":
        for path in DISCOVERY:
            call(Request("get", path=path, query="timeout=32s"))
        call(Request("get", "deployments", ns, name, group="apps"))
        applied = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                                orjson.dumps(sent).decode() + "\n"}},
                   "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": name}],
                                                  "containers": [{"image": app.image, "name": name}]}}}}
        call(Request("patch", "deployments", ns, name, group="apps",
                     query="fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
                     request_object=applied, response_object=returned))
        call(Request("get", "deployments", ns, name, group="apps"))
        call(Request("watch", "deployments", ns, group="apps", duration=rng.randrange(20, 120) * SECOND,
                     query=f"fieldSelector={quote(f'metadata.name={name}')}&resourceVersion="
                           f"{at // 1000}&watch=true"))
    elif pipe.tool == "argocd":
        call(Request("patch", "deployments", ns, name, group="apps", query="fieldManager=argocd-controller&force=true",
                     request_object=sent, response_object=returned))
    else:
        release = f"sh.helm.release.v1.{name}.v{releases[name]}"
        call(Request("list", "secrets", ns, query=f"labelSelector={quote(f'name={name},owner=helm')}"))
        call(Request("get", "deployments", ns, name, group="apps"))
        call(Request("patch", "deployments", ns, name, group="apps", query="fieldManager=helm",
                     request_object={"spec": {"template": {"spec": {"containers": [{"name": name,
                                                                                    "image": app.image}]}}}},
                     response_object=returned))
        call(Request("create", "secrets", ns, release, query="fieldManager=helm"))
        call(Request("update", "secrets", ns, f"sh.helm.release.v1.{name}.v{releases[name] - 1}",
                     query="fieldManager=helm"))
    events += roll(factory, world, at, app)
    return events
