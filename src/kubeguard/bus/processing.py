"""What a worker does with one batch: decode, detect, and commit findings with the batch's done mark.

The worker owns transport concerns (which partition, acknowledgement, retries, dead letters); this module
owns the store side, behind a two-method interface so the worker does not care how detection keeps its
state. The transaction that stores the findings also writes the done mark and checks, through ``fence``,
that this worker still owns the batch's partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from kubeguard.api.app import FiledPipeline
from kubeguard.api.metrics import ServiceMetrics
from kubeguard.audit.decode import decode_bytes
from kubeguard.bus.settings_watch import DetectionSettings
from kubeguard.store import batches
from kubeguard.store.recorder import FindingRecorder
from kubeguard.store.state import SqlState

log = logging.getLogger(__name__)

Fence = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class BusBatch:
    key: str
    cluster: str
    body: bytes
    event_count: int
    stream_seq: int
    partition: int


class UnreadableBatch(ValueError):
    """Not one audit event could be decoded from the batch; retrying will not change that."""


class BatchProcessor(Protocol):
    def process(self, batch: BusBatch, fence: Fence) -> bool:
        """Commit the batch's findings and done mark; False if it was already done (nothing written)."""
        ...

    def reset(self) -> None:
        """Forget cached detector state: partitions changed hands, the store is the truth again."""
        ...


class PipelineProcessor:
    """Runs the shared detection pipeline; its state is (re)loaded from the store on :meth:`reset`."""

    def __init__(
        self,
        engine: Engine,
        settings: Any,
        recorder: FindingRecorder,
        metrics: ServiceMetrics,
        *,
        pipeline_options: dict[str, Any],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._recorder = recorder
        self._metrics = metrics
        self._options = pipeline_options
        self.detection = DetectionSettings(pipeline_options.get("intel"), self._set_intel)
        self._filed: FiledPipeline | None = None

    def reset(self) -> None:
        self._filed = None

    def process(self, batch: BusBatch, fence: Fence) -> bool:
        if not batch.cluster:
            raise UnreadableBatch("the message has no Kg-Cluster header")
        with self._engine.connect() as conn:
            if batches.is_done(conn, batch.key):
                return False
            self.detection.refresh(conn)
        decoded = decode_bytes(batch.body, source=f"bus batch {batch.stream_seq}", cluster=batch.cluster)
        if not decoded.events:
            reason = decoded.rejects[0].reason if decoded.rejects else "the batch holds no audit events"
            raise UnreadableBatch(f"no audit event could be read: {reason}")
        self._metrics.events_decoded.inc(len(decoded.events))
        started = time.perf_counter()
        occurrences = self._pipeline().process(decoded.events)
        self._metrics.detection_seconds.observe(time.perf_counter() - started)

        def finish(conn: Connection) -> None:
            fence(conn)
            batches.mark_done(conn, batch.key, batch.cluster, batch.event_count)

        self._recorder.record(occurrences, also=finish)
        return True

    def save_state(self) -> None:
        if self._filed is not None:
            self._filed.save_state()

    def _pipeline(self) -> FiledPipeline:
        if self._filed is None:
            from kubeguard.pipeline import Pipeline

            options = {**self._options, "intel": self.detection.intel}
            self._filed = FiledPipeline(Pipeline(self._settings, SqlState(self._engine), **options), self.detection)
        return self._filed

    def _set_intel(self, intel: Any) -> None:
        if self._filed is not None:
            self._filed.pipeline.set_intel(intel)
