"""The two clusters of the console's acceptance rehearsal, as the API server's webhook would send them.

- ``lab``: the recorded lab cluster (tests/data/lab-scenario): an anonymous attack and dangerous workloads.
- ``prod-euw1``: nine simulated days of one person's ordinary use (erin, a data engineer: kubectl on
  Windows from her one address, never a secret) before her credentials are used from a hosting provider's
  address with a Python client (the simulator's ``compromised-credentials`` scenario). Her days are the
  simulator's own operator model; only the other actors of the cluster are left out, so the log is a few
  hundred events and the history is in the simulated past (January 2026), far from "now" and from the lab.
"""

from __future__ import annotations

import gzip
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import httpx
import orjson

from kubeguard.sim.actors import World
from kubeguard.sim.clock import DAY, HOUR, in_time_order, to_us
from kubeguard.sim.cluster import build_cluster, build_humans
from kubeguard.sim.directory import Directory
from kubeguard.sim.people import operator
from kubeguard.sim.scenarios import play
from kubeguard.sim.simulator import SimConfig, Simulator

LAB_CLUSTER = "lab"
STOLEN_CLUSTER = "prod-euw1"
LAB_LOG = Path(__file__).resolve().parents[1] / "data" / "lab-scenario" / "audit.jsonl.gz"
#: What kube-apiserver's webhook backend sends at most in one request (--audit-webhook-batch-max-size).
WEBHOOK_BATCH = 400


@dataclass
class StolenCredentials:
    """The second cluster's log and the facts an investigator must find in it."""

    events: list[dict[str, Any]]
    username: str
    usual_ips: list[str]
    usual_agent: str
    new_ip: str
    new_agent: str
    attack_start: str


def stolen_credentials_log(days: int = 9, seed: int = 0, everyone: float = 0.0) -> StolenCredentials:
    """erin's nine days and the stolen use of her credentials; with ``everyone`` > 0, the whole simulated
    cluster around her (controllers, kubelets, add-ons, four other people, pipelines) at that pace of
    machine traffic, as ``kubeguard simulate --learning 9d --attacks compromised-credentials`` writes it."""
    if everyone:
        return _whole_cluster(days, seed, everyone)
    humans = build_humans(random.Random(f"{seed}:people"))
    cluster = build_cluster(STOLEN_CLUSTER, 0, random.Random(f"{seed}:{STOLEN_CLUSTER}:estate"), humans)
    erin = next(human for human in cluster.humans if human.handle == "erin")
    cluster.humans = [erin]
    start = to_us(datetime(2026, 1, 5, tzinfo=UTC))
    world = World(cluster, Directory(cluster, f"{seed}:{STOLEN_CLUSTER}:identity"), start,
                  start + days * DAY, 1.0, seed)
    ordinary = [event for _, event in in_time_order(operator(world, erin))]
    world.end = start + (days + 1) * DAY
    attack, label = play("compromised-credentials", world, start + days * DAY + 11 * HOUR)
    stolen = [event for _, _, event in sorted(attack, key=itemgetter(1))]
    new_ip = label["sourceIPs"][0]
    new_agent = next(e["userAgent"] for e in stolen if e["user"]["username"] == erin.username)
    return StolenCredentials(ordinary + stolen, erin.username, list(erin.ips), erin.agent, new_ip, new_agent,
                             label["start"])


def _whole_cluster(days: int, seed: int, scale: float) -> StolenCredentials:
    config = SimConfig(seed=seed, duration=timedelta(days=days + 1), clusters=[STOLEN_CLUSTER],
                       attacks=["compromised-credentials"], scale=scale, learning=timedelta(days=days))
    simulator = Simulator(config)
    events = list(simulator.events())
    label = simulator.labels[0]
    erin = next(human for human in simulator.worlds[0].cluster.humans if human.handle == "erin")
    new_ip = label["sourceIPs"][0]
    new_agent = next(e["userAgent"] for e in events if e["user"]["username"] == erin.username
                     and e["sourceIPs"][0] == new_ip)
    return StolenCredentials(events, erin.username, list(erin.ips), erin.agent, new_ip, new_agent, label["start"])


def lab_events() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in gzip.decompress(LAB_LOG.read_bytes()).splitlines()]


def event_lists(events: list[dict[str, Any]], size: int = WEBHOOK_BATCH) -> Iterator[bytes]:
    """EventList bodies of up to ``size`` events; items carry no kind/apiVersion, as the API server's don't."""
    for first in range(0, len(events), size):
        items = [{k: v for k, v in event.items() if k not in ("kind", "apiVersion")}
                 for event in events[first : first + size]]
        yield orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})


def post_cluster(url: str, cluster: str, events: list[dict[str, Any]]) -> int:
    """POST ``events`` to ``/k8s-audit/{cluster}``, retrying a 503 after its Retry-After as the API server does."""
    posted = 0
    with httpx.Client(timeout=30) as client:
        for body in event_lists(events):
            deadline = time.monotonic() + 600
            while True:
                response = client.post(f"{url}/k8s-audit/{cluster}", content=body,
                                       headers={"Content-Type": "application/json"})
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(min(float(response.headers.get("Retry-After", "1")), 2.0))
            response.raise_for_status()
            posted += 1
    return posted
