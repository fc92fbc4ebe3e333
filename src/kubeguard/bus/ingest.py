"""``serve --bus``: the webhook's batches go to JetStream, and /api/spool and /metrics report the bus.

With a bus, the serve process does no detection: it receives, publishes and serves the API and console.
What /api/spool shows then comes from JetStream (batches waiting or in flight per partition) and from the
store (batches done, batches being retried, dead letters with their reasons).
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Engine

from kubeguard.bus import layout
from kubeguard.bus.publisher import BusPublisher
from kubeguard.store import batches


class BusIngest:
    def __init__(self, url: str, engine: Engine, registry: CollectorRegistry, settings: layout.BusSettings) -> None:
        self.publisher = BusPublisher(url, settings)
        self._engine = engine
        self._pending = Gauge(
            "kubeguard_bus_pending_batches",
            "Batches in JetStream not yet acknowledged by a worker (waiting or in flight)",
            registry=registry,
        )
        self._dead = Gauge(
            "kubeguard_bus_dead_letters",
            "Batches moved to the dead-letter subject since the store was created",
            registry=registry,
        )
        self._retrying = Gauge(
            "kubeguard_bus_batches_retrying", "Batches detection failed on that are being retried", registry=registry
        )

    @property
    def connected(self) -> bool:
        return self.publisher.connected

    async def start(self) -> None:
        await self.publisher.start()

    async def close(self) -> None:
        await self.publisher.close()

    async def publish(self, cluster: str, body: bytes, event_count: int) -> int:
        return await self.publisher.publish(cluster, body, event_count)

    async def status(self) -> dict[str, Any]:
        """What /api/spool answers in bus mode; also refreshes the bus gauges."""
        js = self.publisher.jetstream
        stream = await js.stream_info(layout.AUDIT_STREAM)
        per_partition: dict[str, int] = {}
        for partition in range(self.publisher.partitions):
            try:
                info = await js.consumer_info(layout.AUDIT_STREAM, layout.consumer_name(partition))
            except NotFoundError:
                continue  # no worker has started yet; its messages are counted in the stream total
            waiting = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            if waiting:
                per_partition[str(partition)] = waiting
        store, dead = await asyncio.to_thread(self._from_store)
        self._pending.set(int(stream.state.messages))
        self._dead.set(store["batches_dead"])
        self._retrying.set(store["batches_retrying"])
        return {
            "mode": "bus",
            "partitions": self.publisher.partitions,
            "batches_pending": int(stream.state.messages),
            "bytes_pending": int(stream.state.bytes),
            "pending_by_partition": per_partition,
            **store,
            "dead_letters": [
                {
                    "cluster": d.cluster,
                    "streamSequence": d.stream_seq,
                    "events": d.event_count,
                    "attempts": d.attempts,
                    "reason": d.reason,
                    "deadAtMs": d.dead_at_ms,
                    "subject": layout.dead_subject(d.cluster),
                }
                for d in dead
            ],
        }

    def _from_store(self) -> tuple[dict[str, int], list[batches.DeadLetter]]:
        with self._engine.connect() as conn:
            return batches.totals(conn), batches.dead_letters(conn)
