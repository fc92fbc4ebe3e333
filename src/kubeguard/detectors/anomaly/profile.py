"""Bounded, serialisable behaviour profiles: per (cluster, principal) and per cluster.

A profile is a set of :class:`Counts`, one per feature, each holding at most ``cap`` distinct values
with their counts and the event time each was first seen; values past the cap go to an ``other``
bucket, so a principal that touches thousands of namespaces costs no more than one that touches a
hundred. A cluster keeps at most ``max_principals`` principal profiles; when it overflows, the least
recently active tenth is dropped at once (amortised eviction: no per-event bookkeeping).

Everything is a ``msgspec.Struct`` so a whole :class:`Baselines` encodes to MessagePack in one call.
"""

from __future__ import annotations

import msgspec

#: Distinct values remembered per feature of a principal, and per cluster-wide feature.
PRINCIPAL_CAP = 48
CLUSTER_CAP = 4096
#: Principal profiles kept per cluster before the least recently active are evicted.
MAX_PRINCIPALS = 20_000


class Counts(msgspec.Struct, omit_defaults=True, gc=False):
    """How often each value of one feature was seen, and since when; bounded by ``cap``."""

    total: int = 0
    other: int = 0
    counts: dict[str, int] = {}
    first: dict[str, int] = {}

    def add(self, value: str, at: int, cap: int, times: int = 1) -> bool:
        """Count ``value`` seen ``times`` times, first at ``at``; True when it was new and is now remembered."""
        self.total += times
        counts = self.counts
        count = counts.get(value)
        if count is not None:
            counts[value] = count + times
            return False
        if len(counts) < cap:
            counts[value] = times
            self.first[value] = at
            return True
        self.other += times
        return False

    def count(self, value: str) -> int:
        return self.counts.get(value, 0)

    def top(self, limit: int) -> list[tuple[str, int]]:
        """The ``limit`` most frequent values, most frequent first."""
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


class PrincipalProfile(msgspec.Struct, omit_defaults=True, gc=False):
    events: int = 0
    first: int = 0
    last: int = 0
    features: dict[str, Counts] = {}

    def feature(self, name: str) -> Counts:
        found = self.features.get(name)
        if found is None:
            found = self.features[name] = Counts()
        return found


class ClusterProfile(msgspec.Struct, omit_defaults=True, gc=False):
    """What the cluster as a whole does: its age, its principals, and cluster-wide features.

    ``features`` holds the images run and permissions checked in the cluster, and under ``principals``
    per API the number of distinct principals that used it (a value is counted once per principal).
    """

    first: int = 0
    last: int = 0
    principals: dict[str, PrincipalProfile] = {}
    features: dict[str, Counts] = {}

    def feature(self, name: str) -> Counts:
        found = self.features.get(name)
        if found is None:
            found = self.features[name] = Counts()
        return found

    def evict(self, keep: int) -> int:
        """Drop the least recently active principals until ``keep`` remain; returns how many went."""
        excess = len(self.principals) - keep
        if excess <= 0:
            return 0
        # By name among equals, so the choice does not depend on the order profiles were loaded in.
        oldest = sorted(self.principals.items(), key=lambda item: (item[1].last, item[0]))[:excess]
        for name, _ in oldest:
            del self.principals[name]
        return excess


class Snapshot(msgspec.Struct, omit_defaults=True):
    version: int = 1
    clusters: dict[str, ClusterProfile] = {}


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def encode(clusters: dict[str, ClusterProfile]) -> bytes:
    return _encoder.encode(Snapshot(clusters=clusters))


def decode(data: bytes) -> dict[str, ClusterProfile]:
    return _decoder.decode(data).clusters
