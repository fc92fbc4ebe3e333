"""Drain the spool through detection, at detection's own pace, in arrival order.

One thread takes the oldest pending batches and hands them to
:meth:`kubeguard.batch.processor.BatchProcessor.process_batches`, which commits their findings, the
detector state they changed, their done marks and the spool rows' done marks in one transaction. A crash
or a failed commit at any point leaves the batches pending, and they are processed again, from the state
the store holds, with the same result; two ``serve`` processes on one database never both process a batch
(the done mark is claimed first and the second waits for it).

Why groups: a detection transaction costs nearly as much for one 400-event batch as for ten (the commit
and its fsync, the roll-up, finding and profile writes, the spool reads), so detecting one batch per
transaction drained 15,000-23,000 events per CPU-second on SQLite, slower than the webhook acknowledges
them, and under a steady load at the acknowledged rate the backlog and the webhook-to-finding latency grew
without bound. Whatever waits is taken at once, up to :data:`MAX_GROUP_EVENTS` events and
:data:`MAX_GROUP_BYTES` bytes: with nothing waiting a batch is detected alone as soon as it lands (the
lowest latency), and a backlog is drained in groups at about 2.5 times the rate. Under a steady stream,
though, taking whatever waits made groups of one to three batches: detection then ran at its least
efficient, and being always busy it held the interpreter lock the webhook's acknowledgements need. So
after a group the drainer lingers until a full group waits (the webhook tells it each batch's events) or
:data:`LINGER_SECONDS` have passed: a batch that lands after a quiet spell is still detected at once, and
under load each waits at most the linger longer. Findings do not depend on where the stream is cut into
batches, so grouping changes no finding. Batches the webhook of this
process decoded are taken decoded (:mod:`kubeguard.api.ingest.handoff`), their bodies left unread.

A failed round stops at the failed batch, so no later batch of its cluster overtakes it. After a group
fails, its batches are retried one per transaction, so a batch that cannot be detected is found and
counted alone. Store errors (a dropped connection, a full disk) are retried for as long as they last; any
other error on the same batch :data:`MAX_ATTEMPTS` times in a row marks that batch failed, with the
reason, so one poison batch cannot stall the service. Drained batches are pruned after the retention
period, and beyond the size cap oldest first, a few hundred rows per transaction so acknowledgements
never wait behind a long delete. For the same reason the SQLite WAL is checkpointed after each group, by
a thread of its own (:mod:`kubeguard.api.ingest.checkpointer`), not by the webhook commit that crossed
SQLite's threshold.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from kubeguard.api.ingest.checkpointer import Checkpointer
from kubeguard.api.ingest.handoff import DecodedHandoff
from kubeguard.api.metrics import ServiceMetrics
from kubeguard.audit.decode import decode_bytes
from kubeguard.batch.processor import BatchPart, BatchProcessor
from kubeguard.store.database import now_ms
from kubeguard.store.spool import Batch, Spool

log = logging.getLogger(__name__)

#: Bounds of one detection group (one transaction): at most this many spool batches, events and body
#: bytes. 8,000 events (20 full API-server batches) take about 0.2 s of CPU, well inside the second
#: a finding may take, and larger groups gain little more (benchmarks/detection_groups.py: 2.4-2.8x the events
#: per CPU-second of one batch per transaction at 8,000, 2.4-3.3x at 16,000).
MAX_GROUP_BATCHES = 64
MAX_GROUP_EVENTS = 8_000
MAX_GROUP_BYTES = 16 * 1024 * 1024
IDLE_WAIT_SECONDS = 1.0
#: After a group, while less than a full group waits: how long at most the drainer lets the next group fill.
#: Under a steady 35,000 events/s a full group (8,000 events) forms in 0.23 s, instead of groups of one to
#: three batches; the wait is well inside the second a finding may take. (Lingering only until half a group
#: waited cut the webhook-to-finding p99 from 567 to 351 ms on SQLite but the sustained rate by a tenth.)
LINGER_SECONDS = 0.25
PRUNE_EVERY_SECONDS = 60.0
#: Failures of one batch on something other than the store before it is marked failed.
MAX_ATTEMPTS = 5
#: Longest pause between retries of a failing batch.
MAX_BACKOFF_SECONDS = 30.0


def spool_batch_id(batch_id: int) -> str:
    """The done-mark name of a spool row (``kg_batches.batch_id``)."""
    return f"spool:{batch_id}"


def _spool_id(part: BatchPart) -> int:
    return int(part.batch_id.removeprefix("spool:"))


class SpoolDrainer:
    def __init__(
        self,
        spool: Spool,
        processor: BatchProcessor,
        metrics: ServiceMetrics,
        *,
        retention_seconds: int,
        retention_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        maintain: Callable[[], None] | None = None,
        handoff: DecodedHandoff | None = None,
    ) -> None:
        self._spool = spool
        #: Periodic upkeep beside spool pruning (the activity store's retention).
        self._maintain = maintain
        self._processor = processor
        #: The webhook's decoded batches (this process's), taken instead of decoding the bodies again.
        self.handoff = handoff
        self._metrics = metrics
        self._retention_ms = retention_seconds * 1000
        self._retention_bytes = retention_bytes
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool drainer", daemon=True)
        self._last_prune = 0.0
        self._failures: tuple[int, int] = (0, 0)
        #: After a group failed: the last spool id of it; until the drainer is past it, one batch per group.
        self._alone_until = 0
        self.max_group_events = MAX_GROUP_EVENTS
        self.linger_seconds = LINGER_SECONDS
        #: Events the webhook has told of, ever, and (events pending after the last group, that count just
        #: before they were read): their sum with what was told since is what waits now, and the linger ends
        #: when it reaches a full group (``_filled``). One tuple, replaced whole, so a wake reads a consistent
        #: pair; a batch told of just before the read counts twice, which only ends a linger sooner.
        self._told = 0
        self._base = (0, 0)
        self._filled = threading.Event()
        #: Checkpoints the SQLite WAL when asked after a group (None on PostgreSQL).
        self.checkpointer = Checkpointer(spool.checkpoint) if spool.dialect == "sqlite" else None

    def start(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()
        self._thread.start()

    def alive(self) -> bool:
        """Whether the drainer's thread runs (it is started with the app and ends only when stopped)."""
        return self._thread.is_alive()

    def wake(self, events: int = 0) -> None:
        """A batch landed (``events`` of them, when the caller knows): detect it, or let the group fill."""
        self._told += events
        if self._waiting() >= self.max_group_events:
            self._filled.set()
        self._wake.set()

    def _waiting(self) -> int:
        pending, told = self._base
        return pending + self._told - told

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._filled.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.checkpointer is not None:
            self.checkpointer.stop(timeout)
        if not self._thread.is_alive():
            self._processor.close()

    def drain_once(self) -> int:
        """Detect one group of the oldest pending batches; returns how many were taken (raises on a failure)."""
        alone = self._alone_until > 0
        batches = self._spool.pending_group(
            max_batches=1 if alone else MAX_GROUP_BATCHES,
            max_events=self.max_group_events,
            max_bytes=MAX_GROUP_BYTES,
            without_body=self.handoff.holds if self.handoff is not None else None,
        )
        if batches:
            self._process(batches)
            if batches[-1].id >= self._alone_until:
                self._alone_until = 0
            if self.checkpointer is not None:
                self.checkpointer.request()
        self._filled.clear()
        told = self._told
        # While the depth is read only what is told counts: a wake meanwhile measured against the last
        # round's base (which may have counted a batch twice) ended the linger before a full group waited.
        self._base = (0, told)
        pending = self._spool.depth().pending_events
        self._base = (pending, told)
        # After the clear: a stop, or a full group told of meanwhile, still ends the linger.
        if self._stop.is_set() or self._waiting() >= self.max_group_events:
            self._filled.set()
        self._metrics.queue_depth.set(pending)
        return len(batches)

    def _run(self) -> None:
        backoff = IDLE_WAIT_SECONDS
        while not self._stop.is_set():
            try:
                processed = self.drain_once()
                self._maybe_prune()
                backoff = IDLE_WAIT_SECONDS
            except Exception:
                log.exception("spool drainer round failed; retrying in %.0f s", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if not processed:
                self._wake.wait(IDLE_WAIT_SECONDS)
                self._wake.clear()
            elif self._waiting() < self.max_group_events:
                self._filled.wait(self.linger_seconds)

    def _process(self, batches: list[Batch]) -> None:
        started = time.perf_counter()
        head = batches[0]
        try:
            result = self._processor.process_batches(
                [self._decoded(batch) for batch in batches],
                within=lambda conn, parts: Spool.mark_many_done(conn, [_spool_id(part) for part in parts]),
            )
        except Exception as exc:
            if isinstance(exc, DBAPIError) or isinstance(exc.__cause__, DBAPIError):
                raise  # the store is unwell: retried for as long as that lasts, never marked failed
            if len(batches) > 1:
                # Which batch is at fault is not known: retry them one per transaction until past this group,
                # and count failures only there, so a batch is marked failed for its own failures alone.
                self._alone_until = batches[-1].id
                raise
            if self._count_failure(head.id) < MAX_ATTEMPTS:
                raise
            log.exception("detection failed %d times on spool batch %d; marking it failed", MAX_ATTEMPTS, head.id)
            self._metrics.batches_failed.inc()
            error = f"{type(exc).__name__}: {exc}"
            self._spool.fail(head.id, spool_batch_id(head.id), head.cluster, error)
            return
        finally:
            self._metrics.detection_seconds.observe(time.perf_counter() - started)
        self._metrics.detection_group_batches.observe(len(batches))
        self._failures = (0, 0)
        if result.processed:
            self._metrics.events_decoded.inc(result.events)
            self._metrics.batch_rejects.inc(result.rejected)

    def _decoded(self, batch: Batch) -> BatchPart:
        batch_id = spool_batch_id(batch.id)
        left = self.handoff.take(batch.id, batch.cluster) if self.handoff is not None else None
        if left is not None:
            self._metrics.detection_decoded.labels("webhook").inc()
            return BatchPart(batch_id, batch.cluster, left.events, left.rejected)
        self._metrics.detection_decoded.labels("drainer").inc()
        body = batch.body or self._spool.body(batch.id)  # not read with the group: the handoff held it
        decoded = decode_bytes(body, source=f"batch {batch_id}", cluster=batch.cluster)
        return BatchPart(batch_id, batch.cluster, decoded.events, len(decoded.rejects))

    def _count_failure(self, batch_id: int) -> int:
        last, count = self._failures
        count = count + 1 if last == batch_id else 1
        self._failures = (batch_id, count)
        return count

    def _maybe_prune(self) -> None:
        if self._clock() - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = self._clock()
        horizon = now_ms() - self._retention_ms
        pruned = self._spool.prune(horizon, max_bytes=self._retention_bytes, stop=self._stop)
        self._processor.prune_done(horizon)
        if pruned:
            log.info("pruned %d drained spool batches", pruned)
        if self._maintain is not None:
            self._maintain()
