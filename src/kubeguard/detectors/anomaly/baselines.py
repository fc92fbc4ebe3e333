"""The baselines: every cluster's and principal's profiles, learning from each event, kept in state.

Learning never stops: each event updates its principal's profile after the anomaly detectors have
scored it against the profile as it was. A cluster is in its learning period until ``learning_days``
of *event* time have passed since its first event (replaying last month's logs learns a month, not
the few seconds the replay took), and a principal is scored only once it has ``min_principal_events``
events of history.

Learning is batched. Most events are repetitive machine traffic that no anomaly detector judges, so the
learner only counts each distinct (who, what, where, from where, with what) tuple in a pending table per
principal. A principal's table is folded into its profile before that principal is judged; every table
is folded before saving, before any other read, and when ``MAX_PENDING`` distinct tuples are waiting.
Judgements therefore see exactly the principal's history before the event, as with per-event learning,
at a fraction of the cost. (Cluster-wide features learned from deferred events may lag by up to
``MAX_PENDING`` tuples; the ones scoring reads, images and permissions, come from bodies and are
learned at once.)

Persistence goes through the detectors' state store as one named blob (``put_blob``/``get_blob``),
MessagePack-encoded, so ``scan --state`` and the service keep what was learned across restarts: a
restart neither forgets nor re-learns.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

DAY = 86_400
#: Name of the blob the baselines occupy in the state store.
BLOB_NAME = "anomaly.baselines"
#: Cluster-wide feature: per API, how many distinct principals used it.
API_PRINCIPALS = "apiPrincipals"
#: Distinct pending tuples held before they are folded into the profiles.
MAX_PENDING = 50_000

#: (cluster, principal): whose pending table a tuple sits in. Keyed by principal, not by the raw user
#: (EKS session extras change per session), so folding before a judgement takes the whole history.
Owner = tuple[str, str]
#: (verb, resource, subresource, namespace, non-resource URI, ip, user agent): what the owner did.
Action = tuple[str, str, str, str, str, str, str]


def owner_of(event: AuditEvent) -> Owner:
    return (event.cluster, f.principal(event))


def action_of(event: AuditEvent) -> Action:
    ref = event.objectRef
    ips = event.sourceIPs
    ip = ips[0] if ips else ""
    if ref is not None and ref.resource:
        return (event.verb, ref.resource, ref.subresource, ref.namespace, "", ip, event.userAgent)
    namespace = ref.namespace if ref is not None else ""
    return (event.verb, "", "", namespace, event.requestURI, ip, event.userAgent)


def pending_key(event: AuditEvent) -> tuple[Owner, Action, str]:
    """(owner, action, event time): what :meth:`Baselines.defer` counts. Every counted event comes here,
    so :func:`owner_of` and :func:`action_of` are inlined (and must say the same)."""
    ref = event.objectRef
    ips = event.sourceIPs
    ip = ips[0] if ips else ""
    if ref is not None and ref.resource:
        action = (event.verb, ref.resource, ref.subresource, ref.namespace, "", ip, event.userAgent)
    else:
        action = (event.verb, "", "", ref.namespace if ref is not None else "", event.requestURI, ip, event.userAgent)
    user = event.user
    owner = (event.cluster, f.principal_of(user.username, bytes(user.extra)) if user.extra else user.username)
    return owner, action, event.stageTimestamp or event.requestReceivedTimestamp or event.timestamp


def observe_key(owner: Owner, action: Action, at: int) -> Observation:
    """The observation of every event by ``owner`` doing ``action`` (what :func:`observe` makes of each)."""
    cluster, principal = owner
    verb, resource, subresource, namespace, uri, ip, agent = action
    values = {f.API: f.api_of(verb, resource, subresource, uri), f.USER_AGENT: f.user_agent(agent)}
    if namespace:
        values[f.NAMESPACE] = namespace
    if ip:
        values[f.NETWORK] = f.network(ip)
        values[f.ASN_ORG] = f.asn_org(ip)
    return Observation(cluster, principal, at, values)


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
        self._pending: dict[Owner, dict[Action, list[Any]]] = {}
        self._pending_count = 0
        #: When not None, every (cluster, principal) whose profile learning touched ("" for the cluster's
        #: own profile), so a batch writes just those rows (``kubeguard.batch``); scans leave it off.
        self.changed: set[tuple[str, str]] | None = None
        #: Principal profiles dropped to keep a cluster under ``max_principals`` (their history is forgotten).
        self.evicted = 0

    @classmethod
    def from_settings(cls, settings: Any) -> Baselines:
        """From ``Settings.anomaly`` (an ``AnomalySettings``)."""
        return cls(learning_days=settings.learning_days, min_principal_events=settings.min_principal_events)

    # -- learning ---------------------------------------------------------------------------------

    def defer(self, event: AuditEvent) -> None:
        """Count ``event`` in its principal's pending table; it reaches the profile at the next flush."""
        owner, key, stamp = pending_key(event)
        self.defer_key(owner, key, stamp)

    def defer_key(self, owner: Owner, key: Action, stamp: str) -> None:
        """:meth:`defer` from :func:`pending_key`'s parts (a split scan computes them in another process)."""
        table = self._pending.get(owner)
        if table is None:
            table = self._pending[owner] = {}
        slot = table.get(key)
        if slot is None:
            if self._pending_count >= MAX_PENDING:
                self.flush()
                table = self._pending[owner] = {}
            table[key] = [1, stamp, stamp]
            self._pending_count += 1
            return
        slot[0] += 1
        if stamp < slot[1]:
            slot[1] = stamp
        elif stamp > slot[2]:
            slot[2] = stamp

    def defer_rows(self, owners: list[Owner], actions: list[Action], rows: dict[tuple[int, int], list[Any]]) -> None:
        """Count rows ``(owner number, action number) → [events, first stamp, last stamp]``, the numbers
        indexing ``owners`` and ``actions``, as :meth:`defer_key` would count their events one by one.

        A split scan sums a run of events in the decoding process and counts the sums here. Summing is the
        same as counting one by one only when no flush falls inside the run: the caller checks first that
        the rows fit in :meth:`pending_room`.
        """
        pending = self._pending
        added = 0
        # fold_span, inlined (a split scan folds a row here for about every other event), and the owner's
        # table looked up again only when the owner changes (a segment's rows come in first-seen order,
        # one owner's often together).
        last_owner = table = None
        for (owner_id, action_id), row in rows.items():
            if owner_id != last_owner:
                last_owner = owner_id
                owner = owners[owner_id]
                table = pending.get(owner)
                if table is None:
                    table = pending[owner] = {}
            action = actions[action_id]
            span = table.get(action)  # type: ignore[union-attr]
            if span is None:
                table[action] = row  # type: ignore[index]
                added += 1
                continue
            times, first, last = row
            span[0] += times
            if first < span[1]:
                span[1] = first
            if last > span[2]:
                span[2] = last
        self._pending_count += added

    def pending_room(self) -> int:
        """How many new (principal, action) keys the pending tables take before the next one flushes them."""
        return MAX_PENDING - self._pending_count

    def flush_owner(self, event: AuditEvent) -> None:
        """Fold the pending table of ``event``'s principal into its profile (before judging it)."""
        owner = owner_of(event)
        table = self._pending.pop(owner, None)
        if table:
            self._pending_count -= len(table)
            self._fold([(owner, action, slot) for action, slot in table.items()])

    def flush(self) -> None:
        """Fold every pending table into the profiles, earliest tuples first."""
        if not self._pending:
            return
        tables, self._pending, self._pending_count = self._pending, {}, 0
        self._fold([(owner, action, slot) for owner, table in tables.items() for action, slot in table.items()])

    def _fold(self, items: list[tuple[Owner, Action, list[Any]]]) -> None:
        for owner, action, (times, first, last) in sorted(items, key=lambda item: item[2][1]):
            seen = observe_key(owner, action, f.seconds_of(first))
            self.learn(seen, times=times, last=f.seconds_of(last))

    def learn(
        self, seen: Observation, extra: dict[str, list[str]] | None = None, *, times: int = 1, last: int = 0
    ) -> None:
        """Add ``times`` events (first at ``seen.at``, last at ``last``) to the principal's and cluster's profiles."""
        latest = max(seen.at, last)
        cluster = self.clusters.get(seen.cluster)
        if cluster is None:
            cluster = self.clusters[seen.cluster] = ClusterProfile(first=seen.at, last=latest)
        if latest > cluster.last:
            cluster.last = latest
        profile = cluster.principals.get(seen.principal)
        changed = self.changed
        if profile is None:
            if len(cluster.principals) >= self.max_principals:
                before = list(cluster.principals) if changed is not None else ()
                dropped = cluster.evict(self.max_principals - max(1, self.max_principals // 10))
                self.evicted += dropped
                log.warning(
                    "cluster %s: %d principal profiles reached the cap (max_principals); forgot the %d least "
                    "recently active (%d so far)", seen.cluster, self.max_principals, dropped, self.evicted,
                )
                if changed is not None:
                    changed.update((seen.cluster, name) for name in before if name not in cluster.principals)
            profile = cluster.principals[seen.principal] = PrincipalProfile(first=seen.at)
        if changed is not None:
            changed.add((seen.cluster, seen.principal))
            changed.add((seen.cluster, ""))
        profile.events += times
        if latest > profile.last:
            profile.last = latest
        cap = self.principal_cap
        at = seen.at
        for name, value in seen.values.items():
            new = profile.feature(name).add(value, at, cap, times)
            if new and name == f.API:
                cluster.feature(API_PRINCIPALS).add(value, at, self.cluster_cap)
        for name, values in (extra or {}).items():
            for value in values:
                profile.feature(name).add(value, at, cap)
                cluster.feature(name).add(value, at, self.cluster_cap)

    # -- reading ----------------------------------------------------------------------------------

    def cluster(self, name: str) -> ClusterProfile | None:
        self.flush()
        return self.clusters.get(name)

    def cluster_learning(self, event: AuditEvent) -> bool:
        """True while ``event``'s cluster is in its learning period: nothing there is judged yet.

        Checked before a principal's pending table is folded, so a young cluster costs no folding.
        """
        cluster = self.clusters.get(event.cluster)
        if cluster is None:
            self.flush()
            cluster = self.clusters.get(event.cluster)
            if cluster is None:
                return True
        return f.seconds_of(event.event_time) - cluster.first < self.learning_seconds

    def in_learning_period(self, cluster: str, stamp: str) -> bool:
        """True when ``cluster`` is known and ``stamp`` falls in its learning period: what
        :meth:`cluster_learning` answers for such an event, without reading the event (and never folding:
        an unknown cluster is False here, for :meth:`cluster_learning` to fold the pending tables and ask)."""
        known = self.clusters.get(cluster)
        return known is not None and f.seconds_of(stamp) - known.first < self.learning_seconds

    def learning(self, seen: Observation) -> bool:
        """True while the cluster or the principal has too little history for a judgement.

        The caller flushes the principal's pending table first (:meth:`flush_owner`).
        """
        cluster = self.clusters.get(seen.cluster)
        if cluster is None or seen.at - cluster.first < self.learning_seconds:
            return True
        profile = cluster.principals.get(seen.principal)
        return profile is None or profile.events < self.min_principal_events

    def principal(self, seen: Observation) -> PrincipalProfile | None:
        self.flush()
        cluster = self.clusters.get(seen.cluster)
        return cluster.principals.get(seen.principal) if cluster is not None else None

    def principal_count(self, cluster: str) -> int:
        self.flush()
        found = self.clusters.get(cluster)
        return len(found.principals) if found is not None else 0

    # -- persistence ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        self.flush()
        return encode(self.clusters)

    def discard_pending(self) -> None:
        """Forget deferred learning not yet folded (a batch that failed is learned again when retried)."""
        self._pending, self._pending_count, self.memo = {}, 0, None

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

