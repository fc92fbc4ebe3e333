"""Drain the spool through detection, at detection's own pace, in arrival order.

One thread takes the oldest pending batches and hands each to
:meth:`kubeguard.batch.processor.BatchProcessor.process_batch`, which commits the batch's findings, the
detector state it changed, its done mark and the spool row's done mark in one transaction. A crash or a
failed commit at any point leaves the batch pending, and it is processed again, from the state the
store holds, with the same result; two ``serve`` processes on one database never both process a batch
(the done mark is claimed first and the second waits for it).

A failed round stops at the failed batch, so no later batch of its cluster overtakes it. Store errors
(a dropped connection, a full disk) are retried for as long as they last; any other error on the same
batch :data:`MAX_ATTEMPTS` times in a row marks that batch failed, with the reason, so one poison batch
cannot stall the service. Drained batches are pruned after the retention period, and beyond the size cap
oldest first, a few hundred rows per transaction so acknowledgements never wait behind a long delete.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from kubeguard.api.metrics import ServiceMetrics
from kubeguard.batch.processor import BatchProcessor
from kubeguard.store.database import now_ms
from kubeguard.store.spool import Batch, Spool

log = logging.getLogger(__name__)

BATCHES_PER_ROUND = 16
IDLE_WAIT_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 60.0
#: Failures of one batch on something other than the store before it is marked failed.
MAX_ATTEMPTS = 5
#: Longest pause between retries of a failing batch.
MAX_BACKOFF_SECONDS = 30.0


def spool_batch_id(batch_id: int) -> str:
    """The done-mark name of a spool row (``kg_batches.batch_id``)."""
    return f"spool:{batch_id}"


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
    ) -> None:
        self._spool = spool
        self._processor = processor
        self._metrics = metrics
        self._retention_ms = retention_seconds * 1000
        self._retention_bytes = retention_bytes
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool drainer", daemon=True)
        self._last_prune = 0.0
        self._failures: tuple[int, int] = (0, 0)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        """Whether the drainer's thread runs (it is started with the app and ends only when stopped)."""
        return self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def drain_once(self) -> int:
        """Process up to one round of pending batches; returns how many were taken (raises on a failure)."""
        batches = self._spool.pending(BATCHES_PER_ROUND)
        for batch in batches:
            self._process(batch)
        self._metrics.queue_depth.set(self._spool.depth().pending_events)
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

    def _process(self, batch: Batch) -> None:
        started = time.perf_counter()
        try:
            result = self._processor.process_batch(
                spool_batch_id(batch.id),
                batch.cluster,
                batch.body,
                within=lambda conn: Spool.mark_done(conn, batch.id),
            )
        except Exception as exc:
            if isinstance(exc, DBAPIError) or isinstance(exc.__cause__, DBAPIError):
                raise  # the store is unwell: retried for as long as that lasts, never marked failed
            if self._count_failure(batch.id) < MAX_ATTEMPTS:
                raise
            log.exception("detection failed %d times on spool batch %d; marking it failed", MAX_ATTEMPTS, batch.id)
            self._metrics.batches_failed.inc()
            error = f"{type(exc).__name__}: {exc}"
            self._spool.fail(batch.id, spool_batch_id(batch.id), batch.cluster, error)
            return
        finally:
            self._metrics.detection_seconds.observe(time.perf_counter() - started)
        self._failures = (0, 0)
        if result.processed:
            self._metrics.events_decoded.inc(result.events)
            self._metrics.batch_rejects.inc(result.rejected)

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
