"""Drain the spool through detection, at detection's own pace, in arrival order.

One thread takes the oldest pending batches, decodes them, runs the pipeline, and stores the findings
and the "done" mark of the batch in one transaction. A crash at any point leaves the batch pending and
it is processed again after restart; findings are upserted by their fingerprint id and detector state
records first sightings idempotently, so a replayed batch converges instead of duplicating. A batch on
which detection raises is marked done with the error (counted and logged), so one poison batch cannot
stall the service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from kubeguard.api.metrics import ServiceMetrics
from kubeguard.audit.decode import decode_bytes
from kubeguard.audit.event import AuditEvent
from kubeguard.graph.recorder import ActivityRecorder
from kubeguard.store.database import now_ms
from kubeguard.store.recorder import FindingRecorder
from kubeguard.store.spool import Batch, Spool

log = logging.getLogger(__name__)

BATCHES_PER_ROUND = 16
IDLE_WAIT_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 300.0


class Detection(Protocol):
    def process(self, events: Iterable[AuditEvent]) -> list[dict[str, Any]]: ...


class SpoolDrainer:
    def __init__(
        self,
        spool: Spool,
        pipeline: Detection,
        recorder: FindingRecorder,
        metrics: ServiceMetrics,
        *,
        retention_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        activity: ActivityRecorder | None = None,
        maintain: Callable[[], None] | None = None,
    ) -> None:
        self._spool = spool
        self._pipeline = pipeline
        self._recorder = recorder
        self._metrics = metrics
        self._retention_ms = retention_seconds * 1000
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool drainer", daemon=True)
        self._last_prune = 0.0
        #: The activity store's recorder: its deltas commit in the batch's transaction (or are dropped).
        self._activity = activity
        #: Periodic upkeep beside spool pruning (the activity store's retention).
        self._maintain = maintain

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        save_state = getattr(self._pipeline, "save_state", None)
        if save_state is not None and not self._thread.is_alive():
            save_state()

    def drain_once(self) -> int:
        """Process up to one round of pending batches; returns how many were processed."""
        batches = self._spool.pending(BATCHES_PER_ROUND)
        for batch in batches:
            self._process(batch)
        self._metrics.queue_depth.set(self._spool.depth().pending_events)
        return len(batches)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                processed = self.drain_once()
                self._maybe_prune()
            except Exception:
                log.exception("spool drainer round failed; retrying")
                processed = 0
                self._stop.wait(IDLE_WAIT_SECONDS)
            if not processed:
                self._wake.wait(IDLE_WAIT_SECONDS)
                self._wake.clear()

    def _process(self, batch: Batch) -> None:
        decoded = decode_bytes(batch.body, source=f"spool batch {batch.id}", cluster=batch.cluster)
        # Rejects were counted when the webhook took the batch in; the same records fail here again.
        self._metrics.events_decoded.inc(len(decoded.events))
        started = time.perf_counter()
        try:
            occurrences = self._pipeline.process(decoded.events)
        except Exception as exc:
            if self._activity is not None:
                self._activity.discard()
            log.exception("detection failed on spool batch %d; marking it failed", batch.id)
            self._metrics.batches_failed.inc()
            error = f"{type(exc).__name__}: {exc}"
            self._recorder.record([], also=lambda conn: Spool.mark_done(conn, batch.id, error))
            return
        finally:
            self._metrics.detection_seconds.observe(time.perf_counter() - started)
        activity = self._activity
        if activity is None:
            self._recorder.record(occurrences, also=lambda conn: Spool.mark_done(conn, batch.id))
            return
        activity.observe_findings(occurrences)

        def commit_with_batch(conn: Any) -> None:
            activity.flush(conn)
            Spool.mark_done(conn, batch.id)

        try:
            self._recorder.record(occurrences, also=commit_with_batch)
        except Exception:
            activity.discard()  # the batch stays pending and is replayed with its events
            raise

    def _maybe_prune(self) -> None:
        if self._clock() - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = self._clock()
        pruned = self._spool.prune(now_ms() - self._retention_ms)
        if pruned:
            log.info("pruned %d drained spool batches", pruned)
        if self._maintain is not None:
            self._maintain()
