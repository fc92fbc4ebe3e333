"""One transaction per batch: the entry point every mode uses to turn a batch of audit events into findings.

A *batch* is what a sender handed over in one piece and got one acknowledgement for: a webhook request in
the spool, a message on the bus, a page of a live source. :meth:`BatchProcessor.process_batch` detects it
and commits, in **one** store transaction:

* the batch's done mark (``kg_batches``, keyed by the caller's batch id) — taken first, so a second
  process offered the same batch waits for the first and then finds it done;
* the batch's findings, aggregated by fingerprint and upserted once each (suppression rules applied);
* every piece of detector state the batch changed, as deltas: first-seen keys, the de-duplication
  window's new keys, the anomaly profile rows the batch taught something (and each cluster's learning
  clock), the cluster's event position;
* whatever the caller and the batch participants write (the spool's done mark, a live source's cursor,
  the console's roll-ups).

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

from sqlalchemy import Connection, Engine, delete, select, update

from kubeguard.audit.decode import decode_bytes
from kubeguard.audit.event import AuditEvent
from kubeguard.batch.state import BatchKeys, StoredWindow, load_profiles, write_profiles
from kubeguard.config import Settings
from kubeguard.detectors.anomaly.baselines import Baselines
from kubeguard.detectors.base import Detector
from kubeguard.findings.builder import IpDescriber, address_only
from kubeguard.pipeline import FindingSet, Pipeline, PipelineStats
from kubeguard.store import schema
from kubeguard.store.database import now_ms
from kubeguard.store.dialect import insert_if_absent
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
        clusters = tuple(sorted({cluster, *(event.cluster for event in events)}))
        info = BatchInfo(batch_id, cluster, clusters)
        stats = self.pipeline.stats
        before = PipelineStats(**{name: getattr(stats, name) for name in PipelineStats.__slots__})
        with self._busy:
            for attempt in itertools.count(1):
                claimed: dict[str, int] = {}
                try:
                    with contextlib.ExitStack() as locks:
                        conn = locks.enter_context(self.engine.begin())
                        stored = self._detect_and_write(conn, info, events, rejected, within, claimed, locks)
                except BatchAlreadyStored:
                    self._restore_stats(before)
                    return BatchResult(batch_id, processed=False, events=len(events))
                except BatchRaced:
                    self._forget(clusters)
                    self._restore_stats(before)
                    if attempt >= MAX_RACES:
                        raise
                    continue
                except BaseException:
                    self._forget(clusters)
                    self._restore_stats(before)
                    raise
                finally:
                    self.keys.conn = None
                self._versions.update(claimed)
                break
        self.recorder.announce(stored)
        return BatchResult(
            batch_id,
            processed=True,
            events=len(events),
            counted=stats.counted - before.counted,
            duplicates=stats.duplicates - before.duplicates,
            rejected=rejected + stats.rejected - before.rejected,
            occurrences=stats.detections - before.detections,
            stored=stored,
        )

    def _detect_and_write(
        self,
        conn: Connection,
        info: BatchInfo,
        events: Sequence[AuditEvent],
        rejected: int,
        within: Callable[[Connection], None] | None,
        claimed: dict[str, int],
        locks: contextlib.ExitStack,
    ) -> list[Stored]:
        mark = {
            "batch_id": info.batch_id,
            "cluster": info.cluster,
            "done_at_ms": now_ms(),
            "events": len(events),
            "rejected": rejected,
            "occurrences": 0,
        }
        # PostgreSQL: claim the batch and lock its clusters first; a second process waits on the row
        # locks, then finds the batch done. SQLite (one writer, single-process mode): detect before taking
        # the database's write lock, so webhook appends never wait behind detection, and check at write
        # time that nobody stored the batch or moved its clusters meanwhile (else detect it again).
        optimistic = conn.dialect.name == "sqlite"
        if optimistic:
            marks = schema.batches
            if conn.execute(select(marks.c.batch_id).where(marks.c.batch_id == info.batch_id)).first():
                raise BatchAlreadyStored(info.batch_id)
            for name in info.clusters:
                claimed[name] = self._read_cluster(conn, name)
        else:
            if not insert_if_absent(conn, schema.batches, mark):
                raise BatchAlreadyStored(info.batch_id)
            for name in info.clusters:
                claimed[name] = self._claim(conn, name)
        self.keys.conn = conn
        findings = FindingSet()
        process, add = self.pipeline.process_event, findings.add
        participants = self.participants
        stats = self.pipeline.stats
        detections_before, rejected_before = stats.detections, stats.rejected
        for event in events:
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
            if not insert_if_absent(conn, schema.batches, mark):
                raise BatchRaced(f"batch {info.batch_id} was stored meanwhile")
            for name in info.clusters:
                self._bump(conn, name, claimed[name])
        stored = self.recorder.store(conn, self.file_findings(findings.values()))
        self.keys.write(conn)
        self.window.write(conn)
        if self.baselines is not None:
            write_profiles(conn, self.baselines)
        table = schema.clusters
        for name in info.clusters:
            conn.execute(update(table).where(table.c.cluster == name).values(position=self.window.position(name)))
        for participant in participants:
            participant.flush(conn, info)
        if within is not None:
            within(conn)
        conn.execute(
            update(schema.batches)
            .where(schema.batches.c.batch_id == info.batch_id)
            .values(
                occurrences=stats.detections - detections_before,
                rejected=rejected + stats.rejected - rejected_before,
            )
        )
        return stored

    def _claim(self, conn: Connection, cluster: str) -> int:
        """Lock the cluster's row for this transaction and make sure the caches hold its committed state."""
        table = schema.clusters
        insert_if_absent(conn, table, {"cluster": cluster, "version": 0, "position": 0, "updated_at_ms": now_ms()})
        row = conn.execute(
            update(table)
            .where(table.c.cluster == cluster)
            .values(version=table.c.version + 1, updated_at_ms=now_ms())
            .returning(table.c.version, table.c.position)
        ).one()
        if self._versions.get(cluster) != row.version - 1 or not self.window.loaded(cluster):
            self._load(conn, cluster, row.position)
        return int(row.version)

    def _read_cluster(self, conn: Connection, cluster: str) -> int:
        """Without locking: make the caches hold the cluster's committed state; returns the version to write."""
        table = schema.clusters
        row = conn.execute(select(table.c.version, table.c.position).where(table.c.cluster == cluster)).first()
        version, position = (int(row.version), int(row.position)) if row is not None else (0, 0)
        if self._versions.get(cluster) != version or not self.window.loaded(cluster):
            self._load(conn, cluster, position)
        return version + 1

    def _bump(self, conn: Connection, cluster: str, version: int) -> None:
        """Move the cluster to ``version`` if it is still at the one detection read; else :class:`BatchRaced`."""
        table = schema.clusters
        insert_if_absent(conn, table, {"cluster": cluster, "version": 0, "position": 0, "updated_at_ms": now_ms()})
        moved = conn.execute(
            update(table)
            .where(table.c.cluster == cluster, table.c.version == version - 1)
            .values(version=version, updated_at_ms=now_ms())
            .returning(table.c.version)
        ).first()
        if moved is None:
            raise BatchRaced(f"cluster {cluster} was changed by another process meanwhile")

    def _load(self, conn: Connection, cluster: str, position: int) -> None:
        log.debug("loading the detection state of cluster %s from the store", cluster)
        self.window.load(conn, cluster, position)
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
