"""One transaction per batch: the entry point every mode uses to turn a batch of audit events into findings.

A *batch* is what a sender handed over in one piece and got one acknowledgement for: a webhook request in
the spool, a message on the bus, a page of a live source. :meth:`BatchProcessor.process_batch` detects it
and commits, in **one** store transaction:

* the batch's done mark (``kg_batches``, keyed by the caller's batch id) — taken first, so a second
  process offered the same batch waits for the first and then finds it done;
* the batch's findings, aggregated by fingerprint and upserted once each (suppression rules applied);
* every piece of detector state the batch changed, as deltas: first-seen keys, the de-duplication
  window's new keys, the anomaly profile rows the batch taught something (and each cluster's learning
  clock), and the cluster's version;
* whatever the caller and the batch participants write (the spool's done mark, a live source's cursor,
  the console's roll-ups).

Several batches that wait together may be detected as one *group* (:meth:`BatchProcessor.process_batches`):
still one transaction, now holding every batch's done mark, so the group is stored whole or not at all,
and a batch of it another process stored first is left out. Much of a transaction's cost is the same
for 400 events as for 8,000 (the commit, the roll-up, finding and profile writes, correlation), so a
backlog drains 2.4-2.8 times as fast in groups of 8,000 events (benchmarks/detection_groups.py), and
detection does not depend on where batches are cut.

The guarantee: a crash at any instant, a failed commit, or a redelivery gives exactly the findings,
``service.count`` and state of an uninterrupted run, and the same as ``kubeguard scan`` of the same
events. Nothing in memory decides a retried batch's result: memory is only a cache of committed state,
checked against each cluster's version in ``kg_clusters`` (locked by the batch, so one process at a time
works on a cluster, in whatever order the caller hands batches in), and every cache a failed batch
touched is dropped before it is retried.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, select

from kubeguard.audit.decode import decode_bytes
from kubeguard.audit.event import AuditEvent
from kubeguard.batch.state import BatchKeys, StoredWindow, dialect_insert, load_profiles, write_profiles
from kubeguard.config import Settings
from kubeguard.detectors.anomaly.baselines import Baselines
from kubeguard.detectors.base import Detector
from kubeguard.findings.builder import IpDescriber, address_only
from kubeguard.pipeline import FindingSet, Pipeline, PipelineStats
from kubeguard.store import schema
from kubeguard.store.database import now_ms
from kubeguard.store.dialect import insert_absent
from kubeguard.store.recorder import FindingRecorder, Stored

log = logging.getLogger(__name__)

#: Turns the batch's aggregated findings into what is stored (files them under a detector, or drops them
#: while detection is disabled). The identity by default.
FileFindings = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass(slots=True, frozen=True)
class BatchInfo:
    """What participants learn about the batch they take part in."""

    batch_id: str
    cluster: str
    clusters: tuple[str, ...]


class BatchParticipant(Protocol):
    """Something else that must be committed with the batch (the console's activity roll-ups, say).

    ``observe`` sees every decoded event of the batch, ``flush`` writes inside the batch's transaction,
    and ``discard`` drops what was observed when the batch failed (it will be offered again).
    """

    def observe(self, event: AuditEvent) -> None: ...

    def flush(self, conn: Connection, batch: BatchInfo) -> None: ...

    def discard(self) -> None: ...


@dataclass(slots=True, frozen=True)
class BatchPart:
    """One acknowledged batch of a group, already decoded: its done-mark name, its cluster and its events."""

    batch_id: str
    cluster: str
    events: Sequence[AuditEvent]
    #: Records of the batch the decoder could not read (kept in its done mark).
    rejected: int = 0


#: ``within`` of a group: runs in the transaction, told the parts stored by it (not those stored before).
WithinGroup = Callable[[Connection, Sequence[BatchPart]], None]


@dataclass(slots=True)
class BatchResult:
    batch_id: str
    #: False when the batch had been stored before (a redelivery): nothing was done again.
    processed: bool
    events: int = 0
    counted: int = 0
    duplicates: int = 0
    #: Records the decoder could not read plus events the pipeline could not judge.
    rejected: int = 0
    occurrences: int = 0
    stored: list[Stored] = field(default_factory=list)
    #: The batch ids this call stored (a group may find some stored before, by another process).
    done: list[str] = field(default_factory=list)


class BatchAlreadyStored(Exception):
    """Raised inside the transaction to roll it back when the batch's done mark exists."""


class BatchRaced(Exception):
    """Another process stored this batch or another of its clusters while it was detected (SQLite)."""


#: Times a batch is detected again after losing such a race before the error is raised.
MAX_RACES = 5


class StateReadFailed(RuntimeError):
    """A detector's read of the store failed during the batch: the batch fails and is retried whole."""


class BatchProcessor:
    """Detection with state in the store; one instance per process, used by one thread at a time."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        recorder: FindingRecorder,
        *,
        file_findings: FileFindings | None = None,
        participants: Sequence[BatchParticipant] = (),
        detectors: Sequence[Detector] | None = None,
        intel: Any = None,
        describe_ip: IpDescriber = address_only,
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.file_findings = file_findings or (lambda found: found)
        self.participants = list(participants)
        self.keys = BatchKeys()
        self.window = StoredWindow()
        self.baselines: Baselines | None = None
        if settings.anomaly.enabled:
            self.baselines = Baselines.from_settings(settings.anomaly)
            self.baselines.changed = set()
        self.pipeline = Pipeline(
            settings,
            self.keys,
            detectors=detectors,
            intel=intel,
            baselines=self.baselines,
            describe_ip=describe_ip,
            window=self.window,
        )
        #: Each cluster's version in ``kg_clusters`` that this process's caches reflect.
        self._versions: dict[str, int] = {}
        self._busy = threading.Lock()
        self._conn: Connection | None = None

    @property
    def stats(self) -> PipelineStats:
        return self.pipeline.stats

    def set_intel(self, intel: Any) -> None:
        self.pipeline.set_intel(intel)

    def process_batch(
        self,
        batch_id: str,
        cluster: str,
        body: bytes | None = None,
        *,
        events: Sequence[AuditEvent] | None = None,
        rejected: int = 0,
        within: Callable[[Connection], None] | None = None,
    ) -> BatchResult:
        """Detect one batch and commit everything it changed in one transaction; see the module docstring.

        Pass the batch as received (``body``: an EventList, JSON lines, gzip...) or already decoded
        (``events``, with the number of records the decoder ``rejected``). ``within(conn)`` runs inside
        the transaction just before it commits (mark the spool row done, store a source's cursor).
        Raises when the transaction fails: nothing of the batch is then stored, and calling again with the
        same ``batch_id`` is the retry. Batches of one cluster must be offered in order; a batch whose
        ``batch_id`` is already stored returns ``processed=False`` and changes nothing.
        """
        if events is None:
            if body is None:
                raise ValueError("process_batch needs a body or decoded events")
            decoded = decode_bytes(body, source=f"batch {batch_id}", cluster=cluster)
            events, rejected = decoded.events, len(decoded.rejects)
        part = BatchPart(batch_id, cluster, events, rejected)
        result = self.process_batches([part], None if within is None else lambda conn, _parts: within(conn))
        result.batch_id = batch_id
        return result

    def process_batches(self, parts: Sequence[BatchPart], within: WithinGroup | None = None) -> BatchResult:
        """Detect several batches, in order, as one group and commit it in one transaction.

        The same promise as :meth:`process_batch`, for the group as a whole: every part's done mark, the
        findings and the state of all of them commit together or not at all. A part whose done mark is
        already stored is left out (its events are not detected again); ``within(conn, parts)`` is told the
        parts this transaction stores. ``processed`` is False when every part had been stored before.
        """
        if not parts:
            raise ValueError("process_batches needs at least one batch")
        if len({part.batch_id for part in parts}) < len(parts):
            raise ValueError("a batch id appears twice in the group")
        stats = self.pipeline.stats
        before = PipelineStats(**{name: getattr(stats, name) for name in PipelineStats.__slots__})
        with self._busy:
            for attempt in itertools.count(1):
                claimed: dict[str, int] = {}
                live: list[BatchPart] = []
                try:
                    conn = self._connection()
                    # The writer lock taken in the transaction is let go only after it has committed (or
                    # rolled back): released before, a waiting spool append met SQLite's still-held lock.
                    with contextlib.ExitStack() as locks, conn.begin():
                        stored = self._detect_and_write(conn, parts, live, within, claimed, locks)
                except BatchAlreadyStored:
                    self._restore_stats(before)
                    return BatchResult(parts[0].batch_id, processed=False, events=sum(len(p.events) for p in parts))
                except BatchRaced:
                    self._forget(_clusters(parts))
                    self._restore_stats(before)
                    if attempt >= MAX_RACES:
                        raise
                    continue
                except BaseException:
                    self._forget(_clusters(parts))
                    self._restore_stats(before)
                    self._drop_connection()
                    raise
                finally:
                    self.keys.conn = None
                self._versions.update(claimed)
                break
        self.recorder.announce(stored)
        return BatchResult(
            parts[0].batch_id,
            processed=True,
            events=sum(len(part.events) for part in live),
            counted=stats.counted - before.counted,
            duplicates=stats.duplicates - before.duplicates,
            rejected=sum(part.rejected for part in live) + stats.rejected - before.rejected,
            occurrences=stats.detections - before.detections,
            stored=stored,
            done=[part.batch_id for part in live],
        )

    def _detect_and_write(
        self,
        conn: Connection,
        parts: Sequence[BatchPart],
        live: list[BatchPart],
        within: WithinGroup | None,
        claimed: dict[str, int],
        locks: contextlib.ExitStack,
    ) -> list[Stored]:
        done_at = now_ms()
        marks = {part.batch_id: _mark(part, done_at) for part in parts}
        # PostgreSQL: claim the batches (in order, so two processes grouping differently cannot deadlock)
        # and then lock their clusters; a second process waits on the row locks, then finds the batches
        # done. SQLite (one writer, single-process mode): detect before taking the database's write lock,
        # so webhook appends never wait behind detection, and check at write time that nobody stored the
        # batches or moved their clusters meanwhile (else detect them again).
        optimistic = conn.dialect.name == "sqlite"
        if optimistic:
            table = schema.batches
            ids = list(marks)
            stored_before = set(conn.scalars(select(table.c.batch_id).where(table.c.batch_id.in_(ids))))
            live.extend(part for part in parts if part.batch_id not in stored_before)
        else:
            inserted = insert_absent(conn, schema.batches, list(marks.values()))
            live.extend(part for part in parts if part.batch_id in inserted)
        if not live:
            raise BatchAlreadyStored(parts[0].batch_id)
        info = BatchInfo(live[0].batch_id, live[0].cluster, _clusters(live))
        for name in info.clusters:
            claimed[name] = self._read_cluster(conn, name) if optimistic else self._lock_cluster(conn, name)
        self.keys.conn = conn
        findings = FindingSet()
        process, add = self.pipeline.process_event, findings.add
        participants = self.participants
        for part in live:
            for event in part.events:
                for participant in participants:
                    participant.observe(event)
                found = process(event)
                if found:
                    for finding in found:
                        add(finding)
        if self.keys.error is not None:
            raise StateReadFailed(f"detector state could not be read: {self.keys.error}") from self.keys.error
        if self.baselines is not None:
            self.baselines.flush()
            self.baselines.memo = None
        locks.enter_context(self.recorder.lock)
        if optimistic:
            inserted = insert_absent(conn, schema.batches, [marks[part.batch_id] for part in live])
            if len(inserted) < len(live):
                raise BatchRaced(f"a batch of {live[0].batch_id}.. was stored meanwhile")
            self._move_clusters(conn, info.clusters, claimed)
        stored = self.recorder.store(conn, self.file_findings(findings.values()))
        self.keys.write(conn)
        self.window.write(conn)
        if self.baselines is not None:
            write_profiles(conn, self.baselines)
        for participant in participants:
            participant.flush(conn, info)
        if within is not None:
            within(conn, live)
        return stored

    def _connection(self) -> Connection:
        """The processor's own connection, kept between batches (no pool checkout and ping per batch)."""
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        """After a failure the connection may be broken: the next batch opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """Give the connection back (the service calls this when it stops)."""
        with self._busy:
            self._drop_connection()

    def _lock_cluster(self, conn: Connection, cluster: str) -> int:
        """Create or lock the cluster's row for this transaction, bumping its version; load the caches
        when they do not hold that cluster's last committed state. Returns the new version."""
        table = schema.clusters
        statement = dialect_insert(conn, table).values(cluster=cluster, version=1, updated_at_ms=now_ms())
        version = conn.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.cluster],
                set_={"version": table.c.version + 1, "updated_at_ms": statement.excluded.updated_at_ms},
            ).returning(table.c.version)
        ).scalar_one()
        if self._versions.get(cluster) != version - 1 or not self.window.loaded(cluster):
            self._load(conn, cluster)
        return int(version)

    def _read_cluster(self, conn: Connection, cluster: str) -> int:
        """Without locking: make the caches hold the cluster's committed state; returns the version to write."""
        table = schema.clusters
        found = conn.execute(select(table.c.version).where(table.c.cluster == cluster)).scalar()
        version = int(found or 0)
        if self._versions.get(cluster) != version or not self.window.loaded(cluster):
            self._load(conn, cluster)
        return version + 1

    def _move_clusters(self, conn: Connection, clusters: Sequence[str], claimed: dict[str, int]) -> None:
        """SQLite: move each cluster's version from the one detection read to the next, or raise
        :class:`BatchRaced` when another process moved it meanwhile (PostgreSQL moved it under its lock)."""
        table = schema.clusters
        for name in clusters:
            version = claimed[name]
            statement = dialect_insert(conn, table).values(cluster=name, version=version, updated_at_ms=now_ms())
            moved = conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[table.c.cluster],
                    set_={"version": version, "updated_at_ms": statement.excluded.updated_at_ms},
                    where=table.c.version == version - 1,
                ).returning(table.c.version)
            ).first()
            if moved is None:
                raise BatchRaced(f"cluster {name} was changed by another process meanwhile")

    def _load(self, conn: Connection, cluster: str) -> None:
        log.debug("loading the detection state of cluster %s from the store", cluster)
        self.window.load(conn, cluster)
        if self.baselines is not None:
            load_profiles(conn, self.baselines, cluster)
        # First-seen keys are not partitioned by cluster in the cache: drop all of it (rare: a handover).
        self.keys.conn = conn
        self.keys.invalidate()

    def _forget(self, clusters: Sequence[str]) -> None:
        """Drop every cache the failed batch may have touched; its retry reloads them from the store."""
        for name in clusters:
            self._versions.pop(name, None)
            self.window.drop(name)
            if self.baselines is not None:
                self.baselines.clusters.pop(name, None)
        if self.baselines is not None:
            self.baselines.discard_pending()
            if self.baselines.changed is not None:
                self.baselines.changed.clear()
        self.keys.invalidate()
        for participant in self.participants:
            with contextlib.suppress(Exception):
                participant.discard()

    def _restore_stats(self, before: PipelineStats) -> None:
        stats = self.pipeline.stats
        for name in PipelineStats.__slots__:
            setattr(stats, name, getattr(before, name))

    # -- housekeeping -----------------------------------------------------------------------------

    def prune_done(self, older_than_ms: int, limit: int = 1000) -> int:
        """Delete up to ``limit`` done marks older than ``older_than_ms`` (a batch cannot come back so late)."""
        table = schema.batches
        with self.recorder.lock, self.engine.begin() as conn:
            doomed = (
                select(table.c.batch_id).where(table.c.done_at_ms < older_than_ms).limit(limit).scalar_subquery()
            )
            return int(conn.execute(delete(table).where(table.c.batch_id.in_(doomed))).rowcount or 0)


def _clusters(parts: Sequence[BatchPart]) -> tuple[str, ...]:
    """Every cluster the parts name, for their batch and in their events: the clusters the group locks."""
    return tuple(sorted({name for part in parts for name in (part.cluster, *(event.cluster for event in part.events))}))


def _mark(part: BatchPart, done_at_ms: int) -> dict[str, Any]:
    """The part's done mark (a ``kg_batches`` row)."""
    return {
        "batch_id": part.batch_id,
        "cluster": part.cluster,
        "done_at_ms": done_at_ms,
        "events": len(part.events),
        "rejected": part.rejected,
    }
