"""Run many periodic chores of one actor as a single stream in order of their start times.

A kubelet renews its lease every few seconds, patches its node status every few minutes and refreshes
each pod's token every hour; each of those is a :class:`Chore`. Keeping all chores of an actor in one
generator (instead of one generator each) keeps the simulator's final merge small.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from kubeguard.sim.events import Stamped


@dataclass(slots=True)
class Chore:
    """Something done every ``period`` microseconds (give or take ``jitter``, a fraction)."""

    period: int
    run: Callable[[int], Iterable[Stamped]]
    jitter: float = 0.1
    #: Exponential gaps (a Poisson process) instead of a jittered clock.
    random_arrivals: bool = False
    #: When the chore first runs; a random point of its first period when unset.
    first: int | None = None


def run_chores(rng: random.Random, start: int, end: int, chores: list[Chore]) -> Iterator[Stamped]:
    """Every chore's events from ``start`` to ``end``, chores interleaved by their start times."""
    queue = [(chore.first if chore.first is not None else start + rng.randrange(max(1, chore.period)), index)
             for index, chore in enumerate(chores)]
    heapq.heapify(queue)
    while queue:
        at, index = queue[0]
        if at >= end:
            heapq.heappop(queue)
            continue
        chore = chores[index]
        yield from chore.run(at)
        if chore.random_arrivals:
            gap = int(rng.expovariate(1.0 / chore.period))
        else:
            gap = int(chore.period * (1.0 + rng.uniform(-chore.jitter, chore.jitter)))
        heapq.heapreplace(queue, (at + max(gap, 1), index))
