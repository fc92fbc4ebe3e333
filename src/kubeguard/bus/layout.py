"""Where audit batches live in JetStream: streams, subjects, partitions and the consumer of each partition.

Why partitions and not one subject per cluster: a cluster's batches must be processed in order (the anomaly
baselines and first-seen state are a function of the sequence), different clusters should run on
different workers, and the number of clusters is open-ended. A cluster is therefore hashed into one of a
fixed number of partitions (``kubeguard.audit.<partition>.<cluster>``); each partition has one durable
pull consumer that allows a single unacknowledged message (``max_ack_pending=1``), so a partition's
batches are handed out strictly one after another and a redelivered batch always comes before its
successors. Workers share the partitions between them (see :mod:`kubeguard.bus.ownership`), so a fleet
spreads across as many workers as there are partitions.

The partition count is a property of the stream, written in its description when the stream is first
created; every process reads it from there, so ``serve`` and all workers agree on the hash. The stream uses
work-queue retention: an acknowledged batch is deleted, so JetStream holds only what is still to do.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

AUDIT_STREAM = "KUBEGUARD_AUDIT"
DEAD_STREAM = "KUBEGUARD_DEAD"
AUDIT_PREFIX = "kubeguard.audit"
DEAD_PREFIX = "kubeguard.dead"
DEFAULT_PARTITIONS = 16
MAX_PARTITIONS = 1024

#: Message headers a batch carries (the body is the webhook request body as received, after gunzip).
CLUSTER_HEADER = "Kg-Cluster"
EVENTS_HEADER = "Kg-Events"
MSG_ID_HEADER = "Nats-Msg-Id"

_PARTITIONS_IN_DESCRIPTION = re.compile(r"partitions=(\d+)")


class BusLayoutError(RuntimeError):
    """The stream on the server does not match what this process expects; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BusSettings:
    """How the streams are created (only the first process to create them decides)."""

    partitions: int = DEFAULT_PARTITIONS
    replicas: int = 1
    #: Bound on what JetStream holds before publishes are refused (the webhook then answers 503).
    max_bytes: int = 8 * 1024**3
    #: Window in which JetStream drops a re-sent batch with the same content digest.
    duplicate_window_seconds: float = 600.0
    #: A batch not acknowledged within this time is redelivered (workers extend it while they work).
    ack_wait_seconds: float = 30.0
    #: How long dead letters are kept on their subject.
    dead_max_age_seconds: float = 30 * 86400.0


def partition_of(cluster: str, partitions: int) -> int:
    """Stable across processes, machines and Python versions (``hash()`` is salted per process)."""
    return zlib.crc32(cluster.encode()) % partitions


def subject_token(cluster: str) -> str:
    """A cluster name as one subject token: webhook cluster names are already ``[A-Za-z0-9._-]``; dots split
    tokens, so they are replaced (the cluster itself travels in a header, never parsed from the subject)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", cluster) or "_"


def audit_subject(cluster: str, partitions: int) -> str:
    return f"{AUDIT_PREFIX}.{partition_of(cluster, partitions)}.{subject_token(cluster)}"


def dead_subject(cluster: str) -> str:
    return f"{DEAD_PREFIX}.{subject_token(cluster)}"


def consumer_name(partition: int) -> str:
    return f"kubeguard-p{partition}"


def batch_key(cluster: str, body: bytes) -> str:
    """The content digest that identifies a batch everywhere: JetStream de-duplication and the done mark.

    A batch the API server sends again (its 200 was lost in a crash) has the same cluster and body, so it
    is dropped by JetStream within the duplicate window and skipped by the done mark after it.
    """
    digest = hashlib.sha256()
    digest.update(cluster.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()[:48]


def _audit_stream_config(settings: BusSettings) -> StreamConfig:
    return StreamConfig(
        name=AUDIT_STREAM,
        description=f"kubeguard audit batches; partitions={settings.partitions}",
        subjects=[f"{AUDIT_PREFIX}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
        max_bytes=settings.max_bytes,
        discard=DiscardPolicy.NEW,
        duplicate_window=settings.duplicate_window_seconds,
    )


def _dead_stream_config(settings: BusSettings) -> StreamConfig:
    return StreamConfig(
        name=DEAD_STREAM,
        description="kubeguard batches detection kept failing on",
        subjects=[f"{DEAD_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
        max_age=settings.dead_max_age_seconds,
        duplicate_window=settings.duplicate_window_seconds,
    )


async def ensure_streams(js: JetStreamContext, settings: BusSettings) -> int:
    """Create the streams if absent; return the partition count the audit stream was created with."""
    if not 1 <= settings.partitions <= MAX_PARTITIONS:
        raise BusLayoutError(f"partitions must be between 1 and {MAX_PARTITIONS}")
    try:
        info = await js.stream_info(AUDIT_STREAM)
    except NotFoundError:
        info = await js.add_stream(_audit_stream_config(settings))
    try:
        await js.stream_info(DEAD_STREAM)
    except NotFoundError:
        await js.add_stream(_dead_stream_config(settings))
    match = _PARTITIONS_IN_DESCRIPTION.search(info.config.description or "")
    if match is None:
        raise BusLayoutError(
            f"stream {AUDIT_STREAM} exists but was not created by kubeguard (no partitions= in its description)"
        )
    return int(match.group(1))


async def ensure_partition_consumer(js: JetStreamContext, partition: int, settings: BusSettings) -> None:
    """The durable consumer of one partition: one batch in flight at a time, so order holds on redelivery."""
    name = consumer_name(partition)
    try:
        await js.consumer_info(AUDIT_STREAM, name)
        return
    except NotFoundError:
        pass
    await js.add_consumer(
        AUDIT_STREAM,
        ConsumerConfig(
            durable_name=name,
            filter_subject=f"{AUDIT_PREFIX}.{partition}.>",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=1,
            ack_wait=settings.ack_wait_seconds,
            max_deliver=-1,
        ),
    )
