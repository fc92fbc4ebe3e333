"""``kubeguard worker``: take partitions, process their batches in order, acknowledge after the commit.

One asyncio loop per process. Every ``rebalance_seconds`` it checks its lock session, gives up partitions
above its fair share and takes free ones (:mod:`kubeguard.bus.ownership`); each owned partition has a task
that fetches the partition's next batch and processes it. Detection is CPU-bound, so batches of all
partitions go through one thread, one at a time; more throughput means more worker processes.

A batch is acknowledged only after its findings and done mark are committed. What can go wrong:

* the worker dies (``kill -9``): its lock session ends, another worker takes the partition, and JetStream
  redelivers the unacknowledged batch after ``ack_wait``; if its commit had happened, the done mark makes
  the redelivery a no-op;
* the store is unreachable: the batch is handed back (``nak`` with a delay) and retried; this is not held
  against the batch, so an outage never dead-letters good batches;
* detection raises on the batch: the failure is counted in the store (shared by all workers) and the batch
  retried after a backoff; after ``max_attempts`` it is published on ``kubeguard.dead.<cluster>`` with the
  reason and acknowledged, so the cluster's later batches proceed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from kubeguard.bus import layout
from kubeguard.bus.connection import connect, redacted
from kubeguard.bus.ownership import LostOwnership, PartitionLeases
from kubeguard.bus.processing import BusBatch, BusProcessor
from kubeguard.store import batches
from kubeguard.store.database import now_ms

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 30.0
PRUNE_EVERY_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    #: Failed detection attempts before a batch goes to the dead-letter subject.
    max_attempts: int = 5
    rebalance_seconds: float = 1.0
    fetch_timeout_seconds: float = 1.0
    retry_delay_seconds: float = 1.0
    #: How long done marks are kept (longer than any re-send of the same batch can come).
    done_retention_seconds: float = 7 * 86400.0


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = Counter(
            "kubeguard_bus_batches",
            "Bus batches handled, by outcome (processed, duplicate, retried, dead_lettered, handed_back)",
            ["outcome"],
            registry=registry,
        )
        self.events = Counter("kubeguard_bus_events", "Audit events in processed bus batches", registry=registry)
        self.partitions = Gauge("kubeguard_bus_partitions_owned", "Partitions this worker holds", registry=registry)
        self.batch_seconds = Histogram(
            "kubeguard_bus_batch_seconds",
            "Time from fetch to acknowledgement of one bus batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )


def _transient(exc: BaseException | None) -> bool:
    """Store or network unreachable or busy: not the batch's fault, so not counted against it.

    The cause chain is followed: a detector's failed read of the store reaches here wrapped.
    """
    while exc is not None:
        if isinstance(exc, (PoolTimeout, OperationalError, InterfaceError, ConnectionError, TimeoutError)):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__
    return False


class Worker:
    def __init__(
        self,
        bus_url: str,
        engine: Engine,
        processor: BusProcessor,
        metrics: WorkerMetrics,
        *,
        bus_settings: layout.BusSettings | None = None,
        options: WorkerOptions | None = None,
    ) -> None:
        self._url = bus_url
        self._engine = engine
        self._processor = processor
        self._metrics = metrics
        self._bus = bus_settings or layout.BusSettings()
        self._options = options or WorkerOptions()
        self._cpu = asyncio.Lock()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._releasing: dict[int, asyncio.Event] = {}
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._leases: PartitionLeases | None = None
        self._last_prune = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        self._nc = await connect(self._url, "kubeguard-worker")
        self._js = self._nc.jetstream()
        partitions = await layout.ensure_streams(self._js, self._bus)
        if partitions != self._bus.partitions:
            log.warning(
                "the audit stream was created with %d partitions; --partitions %d is ignored (changing the "
                "count needs a drained stream, deleted and created again)",
                partitions,
                self._bus.partitions,
            )
        for partition in range(partitions):
            await layout.ensure_partition_consumer(self._js, partition, self._bus)
        self._leases = PartitionLeases(self._engine, partitions)
        log.info("worker on %s: %d partitions", redacted(self._url), partitions)
        try:
            while not stop.is_set():
                await self._rebalance()
                await self._maybe_prune()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._options.rebalance_seconds)
        finally:
            await self._stop_partitions(list(self._tasks))
            await asyncio.to_thread(self._leases.leave)
            await self._nc.drain()

    @property
    def owned(self) -> set[int]:
        return set(self._leases.owned) if self._leases else set()

    async def _rebalance(self) -> None:
        leases = self._leases
        assert leases is not None
        for partition, task in list(self._tasks.items()):
            if task.done():
                await self._stop_partitions([partition])
        try:
            if not leases.connected:
                await asyncio.to_thread(leases.join)
            held = await asyncio.to_thread(leases.held)
            lost = [p for p in self._tasks if p not in held]
            if lost:
                log.warning("lost partitions %s", lost)
                await self._stop_partitions(lost, release=False)
            leases.owned &= held
            surplus = await asyncio.to_thread(leases.surplus)
            if surplus:
                log.info("handing over partitions %s (above the fair share)", surplus)
                await self._stop_partitions(surplus)
            gained = await asyncio.to_thread(leases.acquire_up_to_share)
        except (SQLAlchemyError, LostOwnership) as exc:
            log.warning("lock session lost (%s); giving up every partition", exc)
            await self._stop_partitions(list(self._tasks), release=False)
            await asyncio.to_thread(leases.leave)
            return
        if gained:
            # Cached detector state of these partitions' clusters is checked against each cluster's version
            # in the store by the batch processor, so what the last owner committed is what is used.
            log.info("took partitions %s", sorted(gained))
            for partition in gained:
                self._releasing[partition] = asyncio.Event()
                self._tasks[partition] = asyncio.create_task(self._consume(partition), name=f"partition {partition}")
        self._metrics.partitions.set(len(leases.owned))

    async def _stop_partitions(self, partitions: list[int], *, release: bool = True) -> None:
        for partition in partitions:
            event = self._releasing.get(partition)
            if event is not None:
                event.set()
        for partition in partitions:
            task = self._tasks.pop(partition, None)
            self._releasing.pop(partition, None)
            if task is not None:
                try:
                    await task
                except Exception:  # noqa: BLE001 - a crashed partition task is logged and its partition freed
                    log.exception("partition %d task failed", partition)
            if release and self._leases is not None and partition in self._leases.owned:
                try:
                    await asyncio.to_thread(self._leases.release, partition)
                except (SQLAlchemyError, LostOwnership):
                    self._leases.owned.discard(partition)

    async def _consume(self, partition: int) -> None:
        assert self._js is not None
        releasing = self._releasing[partition]
        sub = await self._js.pull_subscribe_bind(layout.consumer_name(partition), layout.AUDIT_STREAM)
        try:
            while not releasing.is_set():
                try:
                    messages = await sub.fetch(1, timeout=self._options.fetch_timeout_seconds)
                except nats.errors.TimeoutError:
                    continue
                for message in messages:
                    await self._handle(message, partition)
        finally:
            await sub.unsubscribe()

    async def _handle(self, msg: Msg, partition: int) -> None:
        started = time.perf_counter()
        batch = _batch_of(msg, partition)
        keep_alive = asyncio.create_task(self._keep_alive(msg))
        try:
            async with self._cpu:
                fresh = await asyncio.to_thread(self._processor.process, batch, self._fence(partition))
        except LostOwnership as exc:
            log.warning("batch %d of partition %d handed back: %s", batch.stream_seq, partition, exc)
            self._metrics.batches.labels("handed_back").inc()
            await msg.nak()
            self._releasing[partition].set()
            return
        except IntegrityError:
            # Another worker committed the same batch's done mark first: it is done.
            fresh = False
        except Exception as exc:  # noqa: BLE001 - every failure is either retried or dead-lettered
            await self._failed(msg, batch, exc)
            return
        finally:
            keep_alive.cancel()
        await msg.ack()
        self._metrics.batches.labels("processed" if fresh else "duplicate").inc()
        if fresh:
            self._metrics.events.inc(batch.event_count)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)

    def _fence(self, partition: int):
        leases = self._leases
        assert leases is not None
        return lambda conn: leases.fence(conn, partition)

    async def _failed(self, msg: Msg, batch: BusBatch, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if _transient(exc):
            log.warning("batch %d (%s) will be retried: %s", batch.stream_seq, batch.cluster, reason)
            self._metrics.batches.labels("retried").inc()
            await msg.nak(delay=self._options.retry_delay_seconds)
            return
        log.error("detection failed on batch %d (%s): %s", batch.stream_seq, batch.cluster, reason, exc_info=exc)
        try:
            attempts = await asyncio.to_thread(
                batches.record_failure,
                self._engine,
                batch.key,
                batch.cluster,
                batch.stream_seq,
                batch.event_count,
                reason,
            )
        except SQLAlchemyError:
            self._metrics.batches.labels("retried").inc()
            await msg.nak(delay=self._options.retry_delay_seconds)
            return
        if attempts < self._options.max_attempts:
            self._metrics.batches.labels("retried").inc()
            delay = min(self._options.retry_delay_seconds * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)
            await msg.nak(delay=delay)
            return
        await self._dead_letter(msg, batch, attempts, reason)

    async def _dead_letter(self, msg: Msg, batch: BusBatch, attempts: int, reason: str) -> None:
        assert self._js is not None
        headers = {
            layout.CLUSTER_HEADER: batch.cluster,
            layout.EVENTS_HEADER: str(batch.event_count),
            layout.MSG_ID_HEADER: f"dead-{batch.key}",
            "Kg-Reason": reason[:1000].replace("\r", " ").replace("\n", " "),
            "Kg-Attempts": str(attempts),
            "Kg-Stream-Seq": str(batch.stream_seq),
        }
        await self._js.publish(
            layout.dead_subject(batch.cluster), batch.body, stream=layout.DEAD_STREAM, headers=headers
        )
        await asyncio.to_thread(batches.mark_dead, self._engine, batch.key)
        await msg.ack()
        self._metrics.batches.labels("dead_lettered").inc()
        log.error(
            "batch %d (%s, %d events) moved to %s after %d attempts: %s",
            batch.stream_seq,
            batch.cluster,
            batch.event_count,
            layout.dead_subject(batch.cluster),
            attempts,
            reason,
        )

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell JetStream the batch is being worked on, so a long batch is not redelivered meanwhile."""
        interval = max(self._bus.ack_wait_seconds / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            await msg.in_progress()

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = time.monotonic()
        horizon = now_ms() - int(self._options.done_retention_seconds * 1000)
        try:
            await asyncio.to_thread(self._processor.prune_done, horizon)
        except SQLAlchemyError as exc:
            log.warning("pruning done marks failed: %s", exc)


def _batch_of(msg: Msg, partition: int) -> BusBatch:
    headers = msg.headers or {}
    cluster = headers.get(layout.CLUSTER_HEADER) or ""
    try:
        event_count = int(headers.get(layout.EVENTS_HEADER, "0"))
    except ValueError:
        event_count = 0
    key = headers.get(layout.MSG_ID_HEADER) or layout.batch_key(cluster, msg.data)
    return BusBatch(key[:64], cluster, msg.data, event_count, msg.metadata.sequence.stream, partition)
