"""What the controllers log after someone changes a workload: ReplicaSets, pods, bindings, deletions.

A real audit log never shows a Deployment change alone; the deployment controller creates a ReplicaSet,
the ReplicaSet controller creates pods with ``generateName``, the scheduler binds them and the old pods
are deleted. Detectors must learn that controllers create pods all day long, and must not mistake that
echo for the person who caused it, so the echo is generated for benign and attack changes alike.
"""

from __future__ import annotations

import random
from typing import Any

from kubeguard.sim import objects as k8s
from kubeguard.sim.clock import SECOND
from kubeguard.sim.cluster import pod_suffix, template_hash
from kubeguard.sim.directory import Directory
from kubeguard.sim.events import EventFactory, Request, Stamped
from kubeguard.sim.identities import uid


def _bind(factory: EventFactory, directory: Directory, at: int, namespace: str, pod: str) -> list[Stamped]:
    node = directory.node_for(f"{namespace}/{pod}")
    body = {"kind": "Binding", "apiVersion": "v1", "metadata": {"name": pod, "namespace": namespace},
            "target": {"kind": "Node", "name": node.name}}
    return factory.emit(at, directory.scheduler, Request(
        "create", "pods", namespace, pod, "binding", request_object=body,
        response_object={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
        code=201))


def _spawn_pods(factory: EventFactory, directory: Directory, at: int, controller: str, namespace: str,
                prefix: str, spec: dict[str, Any], labels: dict[str, str], owner: dict[str, Any],
                count: int) -> tuple[list[Stamped], list[str]]:
    rng = factory.rng
    caller = directory.controller(controller)
    events: list[Stamped] = []
    names = []
    for _ in range(count):
        at += rng.randrange(2_000, 40_000)
        name = f"{prefix}{pod_suffix(rng)}"
        body = k8s.owned_pod(namespace, prefix, spec, labels, owner)
        response = k8s.stored(body, uid(rng), at // 1000, at)
        response["metadata"]["name"] = name
        events += factory.emit(at, caller, Request("create", "pods", namespace, request_object=body,
                                                   response_object=response))
        events += _bind(factory, directory, at + rng.randrange(5_000, 200_000), namespace, name)
        names.append(name)
    return events, names


def deployment_rollout(factory: EventFactory, directory: Directory, at: int, namespace: str, name: str,
                       spec: dict[str, Any], replicas: int, old_pods: list[str],
                       deployment_uid: str) -> tuple[list[Stamped], str, list[str]]:
    """A new ReplicaSet for ``spec`` and its pods; returns the events, the ReplicaSet and the pod names."""
    rng = factory.rng
    pod_hash = template_hash(rng)
    rs_name = f"{name}-{pod_hash}"
    at += rng.randrange(20_000, 150_000)
    owner = k8s.owner_reference("Deployment", name, deployment_uid)
    labels = {"app": name, "pod-template-hash": pod_hash}
    replica_set = k8s.replica_set(namespace, rs_name, name, spec, replicas, owner)
    replica_set["metadata"]["labels"] = labels
    rs_uid = uid(rng)
    events = factory.emit(at, directory.controller("deployment-controller"), Request(
        "create", "replicasets", namespace, rs_name, group="apps", request_object=replica_set,
        response_object=k8s.stored(replica_set, rs_uid, at // 1000, at)))
    created, pods = _spawn_pods(factory, directory, at + rng.randrange(10_000, 90_000), "replicaset-controller",
                                namespace, f"{rs_name}-", spec, labels,
                                k8s.owner_reference("ReplicaSet", rs_name, rs_uid), replicas)
    events += created
    gone = at + rng.randrange(15, 60) * SECOND
    reaper = directory.controller("replicaset-controller")
    for old in old_pods:
        gone += rng.randrange(500_000, 5 * SECOND)
        events += factory.emit(gone, reaper, Request("delete", "pods", namespace, old))
    events += factory.emit(gone + SECOND, directory.controller("deployment-controller"), Request(
        "update", "deployments", namespace, name, "status", group="apps",
        request_object={"kind": "Deployment", "apiVersion": "apps/v1",
                        "metadata": {"name": name, "namespace": namespace},
                        "status": {"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
                                   "availableReplicas": replicas, "observedGeneration": rng.randrange(2, 400)}}))
    return events, rs_name, pods


def daemon_set_rollout(factory: EventFactory, directory: Directory, at: int, namespace: str, name: str,
                       spec: dict[str, Any], ds_uid: str) -> list[Stamped]:
    """One pod per node, created by the DaemonSet controller with the node already chosen."""
    events: list[Stamped] = []
    caller = directory.controller("daemon-set-controller")
    owner = k8s.owner_reference("DaemonSet", name, ds_uid)
    labels = {"app": name, "controller-revision-hash": template_hash(factory.rng)[:9]}
    for node in directory.cluster.nodes:
        at += factory.rng.randrange(5_000, 80_000)
        body = k8s.owned_pod(namespace, f"{name}-", {**spec, "nodeName": node.name}, labels, owner)
        response = k8s.stored(body, uid(factory.rng), at // 1000, at)
        response["metadata"]["name"] = f"{name}-{pod_suffix(factory.rng)}"
        events += factory.emit(at, caller, Request("create", "pods", namespace, request_object=body,
                                                   response_object=response))
    return events


def job_run(factory: EventFactory, directory: Directory, at: int, namespace: str, name: str,
            spec: dict[str, Any], cron_uid: str, runtime: int) -> list[Stamped]:
    """A CronJob firing: the Job, its pod, the pod's binding, and the Job's completion."""
    rng: random.Random = factory.rng
    job = k8s.job(namespace, name, name.rsplit("-", 1)[0], spec,
                  k8s.owner_reference("CronJob", name.rsplit("-", 1)[0], cron_uid, "batch/v1"))
    job_uid = uid(rng)
    events = factory.emit(at, directory.controller("cronjob-controller"), Request(
        "create", "jobs", namespace, name, group="batch", request_object=job,
        response_object=k8s.stored(job, job_uid, at // 1000, at)))
    created, _ = _spawn_pods(factory, directory, at + rng.randrange(10_000, 60_000), "job-controller", namespace,
                             f"{name}-", spec, {"job-name": name}, k8s.owner_reference("Job", name, job_uid,
                                                                                        "batch/v1"), 1)
    events += created
    events += factory.emit(at + runtime, directory.controller("job-controller"), Request(
        "update", "jobs", namespace, name, "status", group="batch",
        request_object={"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": name, "namespace": namespace},
                        "status": {"succeeded": 1, "ready": 0}}))
    return events
