"""The ingest side of scale-out: append each accepted webhook batch to JetStream, durably, before the 200.

``publish`` returns only when JetStream acknowledged the message, which it does once the message is stored
(on the configured number of replicas). If NATS is unreachable or the stream is full, the caller gets
:class:`BusUnavailable` and the webhook answers 503 with ``Retry-After``: the API server keeps the batch
and sends it again, so nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.js import JetStreamContext

from kubeguard.bus import layout
from kubeguard.bus.chunking import split_batch
from kubeguard.bus.connection import connect, redacted

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10.0


class BusUnavailable(RuntimeError):
    """JetStream did not acknowledge the batch; it was not stored and must be sent again."""


class BusPublisher:
    def __init__(self, url: str, settings: layout.BusSettings | None = None) -> None:
        self.url = url
        self.settings = settings or layout.BusSettings()
        self.partitions = 0
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def start(self) -> None:
        self._nc = await connect(self.url, "kubeguard-serve")
        self._js = self._nc.jetstream()
        self.partitions = await layout.ensure_streams(self._js, self.settings)
        log.info("publishing audit batches to %s (%d partitions)", redacted(self.url), self.partitions)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable("the bus is not connected")
        return self._js

    async def publish(self, cluster: str, body: bytes, event_count: int) -> int:
        """Store one batch in JetStream, in pieces if it is over the message limit; returns the new pieces.

        Raises :class:`~kubeguard.bus.chunking.BatchTooLarge` when one event alone does not fit.
        """
        max_payload = self._nc.max_payload if self._nc is not None else 1024 * 1024
        fresh = 0
        for piece, events in split_batch(body, max_payload, event_count):
            fresh += await self._publish_one(cluster, piece, events)
        return fresh

    async def _publish_one(self, cluster: str, body: bytes, event_count: int) -> bool:
        headers = {
            layout.CLUSTER_HEADER: cluster,
            layout.EVENTS_HEADER: str(event_count),
            layout.MSG_ID_HEADER: layout.batch_key(cluster, body),
        }
        subject = layout.audit_subject(cluster, self.partitions)
        try:
            ack = await self.jetstream.publish(
                subject, body, timeout=PUBLISH_TIMEOUT_SECONDS, stream=layout.AUDIT_STREAM, headers=headers
            )
        except Exception as exc:  # noqa: BLE001 - timeouts, "stream full" API errors, connection loss alike
            raise BusUnavailable(f"JetStream did not store the batch: {type(exc).__name__}: {exc}") from exc
        return not ack.duplicate

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None
            self._js = None
