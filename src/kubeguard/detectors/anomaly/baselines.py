"""The baselines: every cluster's and principal's profiles, learning from each event, kept in state.

Learning never stops: each event updates its principal's profile after the anomaly detectors have
scored it against the profile as it was. A cluster is in its learning period until ``learning_days``
of *event* time have passed since its first event (replaying last month's logs learns a month, not
the few seconds the replay took), and a principal is scored only once it has ``min_principal_events``
events of history.

Persistence goes through the detectors' state store as one named blob (``put_blob``/``get_blob``),
MessagePack-encoded, so ``scan --state`` and the service keep what was learned across restarts: a
restart neither forgets nor re-learns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.anomaly import features as f
from kubeguard.detectors.anomaly.profile import (
    CLUSTER_CAP,
    MAX_PRINCIPALS,
    PRINCIPAL_CAP,
    ClusterProfile,
    PrincipalProfile,
    decode,
    encode,
)

DAY = 86_400
#: Name of the blob the baselines occupy in the state store.
BLOB_NAME = "anomaly.baselines"
#: Cluster-wide feature: per API, how many distinct principals used it.
API_PRINCIPALS = "apiPrincipals"


@dataclass(slots=True)
class Observation:
    """One event as the profiles see it."""

    cluster: str
    principal: str
    at: int
    values: dict[str, str]


def observe(event: AuditEvent) -> Observation:
    """The feature values of ``event`` (images and permissions are added by the detectors that read bodies)."""
    values = {f.API: f.api(event), f.USER_AGENT: f.user_agent(event.userAgent)}
    namespace = event.namespace
    if namespace:
        values[f.NAMESPACE] = namespace
    ip = event.caller_ip
    if ip:
        values[f.NETWORK] = f.network(ip)
        values[f.ASN_ORG] = f.asn_org(ip)
    return Observation(event.cluster, f.principal(event), f.event_seconds(event), values)


class Baselines:
    """All profiles of all clusters, with the learning-period rules that gate scoring."""

    def __init__(
        self,
        *,
        learning_days: float = 7.0,
        min_principal_events: int = 50,
        principal_cap: int = PRINCIPAL_CAP,
        cluster_cap: int = CLUSTER_CAP,
        max_principals: int = MAX_PRINCIPALS,
    ) -> None:
        self.learning_seconds = int(learning_days * DAY)
        self.min_principal_events = min_principal_events
        self.principal_cap = principal_cap
        self.cluster_cap = cluster_cap
        self.max_principals = max_principals
        self.clusters: dict[str, ClusterProfile] = {}
        #: The last event's observation, shared by the detectors that judge it and the learner.
        self.memo: tuple[AuditEvent, Observation] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Baselines:
        """From ``Settings.anomaly`` (an ``AnomalySettings``)."""
        return cls(learning_days=settings.learning_days, min_principal_events=settings.min_principal_events)

    # -- learning ---------------------------------------------------------------------------------

    def learn(self, seen: Observation, extra: dict[str, list[str]] | None = None) -> None:
        """Add one event to its principal's and its cluster's profiles."""
        cluster = self.clusters.get(seen.cluster)
        if cluster is None:
            cluster = self.clusters[seen.cluster] = ClusterProfile(first=seen.at, last=seen.at)
        if seen.at > cluster.last:
            cluster.last = seen.at
        profile = cluster.principals.get(seen.principal)
        if profile is None:
            if len(cluster.principals) >= self.max_principals:
                cluster.evict(self.max_principals - max(1, self.max_principals // 10))
            profile = cluster.principals[seen.principal] = PrincipalProfile(first=seen.at)
        profile.events += 1
        if seen.at > profile.last:
            profile.last = seen.at
        cap = self.principal_cap
        at = seen.at
        for name, value in seen.values.items():
            new = profile.feature(name).add(value, at, cap)
            if new and name == f.API:
                cluster.feature(API_PRINCIPALS).add(value, at, self.cluster_cap)
        for name, values in (extra or {}).items():
            for value in values:
                profile.feature(name).add(value, at, cap)
                cluster.feature(name).add(value, at, self.cluster_cap)

    # -- reading ----------------------------------------------------------------------------------

    def cluster(self, name: str) -> ClusterProfile | None:
        return self.clusters.get(name)

    def learning(self, seen: Observation) -> bool:
        """True while the cluster or the principal has too little history for a judgement."""
        cluster = self.clusters.get(seen.cluster)
        if cluster is None or seen.at - cluster.first < self.learning_seconds:
            return True
        profile = cluster.principals.get(seen.principal)
        return profile is None or profile.events < self.min_principal_events

    def principal(self, seen: Observation) -> PrincipalProfile | None:
        cluster = self.clusters.get(seen.cluster)
        return cluster.principals.get(seen.principal) if cluster is not None else None

    def principal_count(self, cluster: str) -> int:
        found = self.clusters.get(cluster)
        return len(found.principals) if found is not None else 0

    # -- persistence ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return encode(self.clusters)

    def restore(self, data: bytes) -> None:
        self.clusters = decode(data)

    @classmethod
    def from_bytes(cls, data: bytes, **options: Any) -> Baselines:
        baselines = cls(**options)
        baselines.restore(data)
        return baselines

    def save(self, state: Any) -> bool:
        """Write into ``state`` when it keeps blobs; False when it cannot (then nothing persists)."""
        put = getattr(state, "put_blob", None)
        if put is None:
            return False
        put(BLOB_NAME, self.to_bytes())
        return True

    def load(self, state: Any) -> bool:
        """Read what ``state`` holds; False (and nothing changed) when it holds no baselines."""
        get = getattr(state, "get_blob", None)
        data = get(BLOB_NAME) if get is not None else None
        if not data:
            return False
        self.restore(data)
        return True

