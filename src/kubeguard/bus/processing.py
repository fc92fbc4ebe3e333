"""What a worker does with one bus batch: decode it and hand it to the one batch processor every mode uses.

:meth:`kubeguard.batch.processor.BatchProcessor.process_batch` commits the batch's findings, the detector
state it changed and its done mark (``bus:<content digest>``) in one transaction; a redelivered or re-sent
batch finds the mark and changes nothing. This adapter adds what is particular to the bus: the detection
settings are re-read from the store before each batch (other processes change them), the worker's lease
on the partition is checked inside the batch's transaction (``fence``), and a batch from which not one
event can be read is refused as poison so it ends on the dead-letter subject rather than silently done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine

from kubeguard.audit.decode import decode_bytes
from kubeguard.batch.processor import BatchProcessor
from kubeguard.bus.settings_watch import DetectionSettings
from kubeguard.store import batches

Fence = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class BusBatch:
    key: str
    cluster: str
    body: bytes
    event_count: int
    stream_seq: int
    partition: int

    @property
    def batch_id(self) -> str:
        """The done-mark name of the batch (``kg_batches.batch_id``)."""
        return f"bus:{self.key}"


class UnreadableBatch(ValueError):
    """Not one audit event could be decoded from the batch; retrying will not change that."""


class BusProcessor(Protocol):
    def process(self, batch: BusBatch, fence: Fence) -> bool:
        """Commit the batch; False if it had been stored before (nothing written)."""
        ...

    def prune_done(self, older_than_ms: int) -> int: ...


class BusBatchProcessor:
    def __init__(self, engine: Engine, processor: BatchProcessor, detection: DetectionSettings) -> None:
        self._engine = engine
        self._processor = processor
        self.detection = detection

    def process(self, batch: BusBatch, fence: Fence) -> bool:
        if not batch.cluster:
            raise UnreadableBatch("the message has no Kg-Cluster header")
        with self._engine.connect() as conn:
            self.detection.refresh(conn)
        decoded = decode_bytes(batch.body, source=f"bus batch {batch.stream_seq}", cluster=batch.cluster)
        if not decoded.events:
            reason = decoded.rejects[0].reason if decoded.rejects else "the batch holds no audit events"
            raise UnreadableBatch(f"no audit event could be read: {reason}")

        def within(conn: Connection) -> None:
            fence(conn)
            batches.clear_failures(conn, batch.key)

        result = self._processor.process_batch(
            batch.batch_id, batch.cluster, events=decoded.events, rejected=len(decoded.rejects), within=within
        )
        return result.processed

    def prune_done(self, older_than_ms: int) -> int:
        return self._processor.prune_done(older_than_ms)
