"""The simulator: every actor of every cluster merged into one time-ordered stream, attacks spliced in.

Events carry no cluster field, as real ones do not; :meth:`Simulator.stream` pairs each with its
cluster's name, and the CLI writes one file per cluster. Attacks are played when the stream reaches
their start time, so they see the cluster as it is then (the pods that exist, the apps' current images),
and each scenario's label is appended to :attr:`Simulator.labels` at that moment.

Determinism: every actor, identity and scenario draws from its own generator seeded by
``(seed, cluster, name)``. The same configuration always yields the same bytes, and the benign part of
a run is the same with or without attacks.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from kubeguard.sim.actors import World, add_ons, control_plane, cron_jobs, informers, kubelets
from kubeguard.sim.clock import HOUR, in_time_order, span_us, to_us
from kubeguard.sim.cluster import build_cluster, build_humans
from kubeguard.sim.directory import Directory
from kubeguard.sim.people import operator, pipeline
from kubeguard.sim.scenarios import play, resolve

DEFAULT_CLUSTERS = ("prod-use1", "staging-usw2", "prod-euw1", "dev-apse2")


def cluster_names(count: int) -> list[str]:
    """Names for ``count`` clusters: the four stock ones, then ``cluster-5``, ``cluster-6``..."""
    return [DEFAULT_CLUSTERS[i] if i < len(DEFAULT_CLUSTERS) else f"cluster-{i + 1}" for i in range(count)]


@dataclass
class SimConfig:
    """What to simulate. ``attacks`` takes scenario names, ``all``, ``guardduty-tester`` or ``none``."""

    seed: int = 0
    #: A Monday, so the first week has five working days.
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 5, tzinfo=UTC))
    duration: timedelta = timedelta(days=14)
    clusters: list[str] = field(default_factory=lambda: [DEFAULT_CLUSTERS[0]])
    attacks: list[str] = field(default_factory=list)
    #: Multiplies the pace of machine traffic (leases, node status, autoscaler, secret syncs).
    scale: float = 1.0
    #: Attacks start only after this much simulated time, so detectors have a history to learn from.
    learning: timedelta = timedelta(days=7)


class Simulator:
    """A seeded generator of audit Events for one or more clusters, with labelled attacks."""

    def __init__(self, config: SimConfig) -> None:
        if not config.clusters:
            raise ValueError("at least one cluster is needed")
        if config.scale <= 0:
            raise ValueError("scale must be positive")
        self.config = config
        self.start = to_us(config.start)
        self.end = self.start + span_us(config.duration)
        self.labels: list[dict[str, Any]] = []
        humans = build_humans(random.Random(f"{config.seed}:people"))
        self.worlds: list[World] = []
        for index, name in enumerate(config.clusters):
            cluster = build_cluster(name, index, random.Random(f"{config.seed}:{name}:estate"), humans)
            directory = Directory(cluster, f"{config.seed}:{name}:identity")
            self.worlds.append(World(cluster, directory, self.start, self.end, config.scale, config.seed))
        self.schedule = self._schedule(resolve(config.attacks))

    def _schedule(self, names: list[str]) -> dict[str, list[tuple[int, str]]]:
        """When and where each attack happens: round-robin over clusters, at a seeded time after learning."""
        plan: dict[str, list[tuple[int, str]]] = {world.cluster.name: [] for world in self.worlds}
        if not names:
            return plan
        first = self.start + span_us(self.config.learning)
        window = self.end - 3 * HOUR - first
        if window <= 0:
            raise ValueError("the duration leaves no time for attacks after the learning period "
                             f"({self.config.learning}); lengthen the run or shorten the learning")
        for index, name in enumerate(names):
            rng = random.Random(f"{self.config.seed}:schedule:{name}")
            cluster = self.worlds[index % len(self.worlds)].cluster.name
            plan[cluster].append((first + rng.randrange(window), name))
        for attacks in plan.values():
            attacks.sort()
        return plan

    def stream(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(cluster, event)`` pairs for all clusters, in order of ``stageTimestamp``."""
        clusters = [self._cluster(world) for world in self.worlds]
        for _, name, event in heapq.merge(*clusters, key=itemgetter(0)):
            yield name, event

    def events(self) -> Iterator[dict[str, Any]]:
        """The events of all clusters in time order (use :meth:`stream` to know which cluster)."""
        for _, event in self.stream():
            yield event

    def _cluster(self, world: World) -> Iterator[tuple[int, str, dict[str, Any]]]:
        name = world.cluster.name
        actors = [informers(world), control_plane(world), kubelets(world), add_ons(world), cron_jobs(world)]
        actors += [operator(world, human) for human in world.cluster.humans]
        actors += [pipeline(world, pipe) for pipe in world.cluster.pipelines]
        benign = heapq.merge(*(in_time_order(actor) for actor in actors), key=itemgetter(0))
        attacks = list(self.schedule[name])
        staged: list[tuple[int, int, dict[str, Any]]] = []
        end = self.end
        for at, event in benign:
            while attacks and attacks[0][0] <= at:
                self._play(world, attacks.pop(0), staged)
            while staged and staged[0][0] <= at:
                stamp, _, attack_event = heapq.heappop(staged)
                yield stamp, name, attack_event
            if at >= end:
                break
            yield at, name, event
        while attacks:
            self._play(world, attacks.pop(0), staged)
        while staged:
            stamp, _, attack_event = heapq.heappop(staged)
            yield stamp, name, attack_event

    def _play(self, world: World, attack: tuple[int, str], staged: list[tuple[int, int, dict[str, Any]]]) -> None:
        at, scenario = attack
        events, label = play(scenario, world, at)
        self.labels.append(label)
        for _, stage, event in events:
            heapq.heappush(staged, (stage, len(staged) + len(self.labels) * 100_000, event))
