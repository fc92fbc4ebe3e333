"""Run traffic through :class:`kubeguard.batch.processor.BatchProcessor` and read back what it stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, select

from batch.traffic import SETTINGS
from kubeguard.batch.processor import BatchProcessor
from kubeguard.config import Settings
from kubeguard.store import findings as finding_store
from kubeguard.store import schema
from kubeguard.store.recorder import FindingRecorder

#: (batch id, cluster, body as JSON lines)
Batch = tuple[str, str, bytes]


def cut(pairs: Sequence[tuple[str, bytes]], sizes: Iterable[int], prefix: str = "b") -> list[Batch]:
    """Cut the stream into consecutive slices of ``sizes`` (the last takes the rest), one batch per cluster
    per slice, keeping each cluster's order, as the clusters' API servers would send them."""
    batches: list[Batch] = []
    start = 0
    sizes = iter(sizes)
    while start < len(pairs):
        size = max(1, next(sizes, len(pairs)))
        by_cluster: dict[str, list[bytes]] = {}
        for cluster, raw in pairs[start : start + size]:
            by_cluster.setdefault(cluster, []).append(raw)
        for cluster, raws in by_cluster.items():
            batches.append((f"{prefix}{len(batches)}", cluster, b"\n".join(raws)))
        start += size
    return batches


def processor(engine: Engine, settings: Settings = SETTINGS) -> BatchProcessor:
    return BatchProcessor(engine, settings, FindingRecorder(engine))


def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {finding["id"]: finding for finding in finding_store.scan(conn, None, {})}


def state_rows(engine: Engine) -> dict[str, list[Any]]:
    """Every piece of detector state in the store, in a comparable form."""
    tables = {
        "state": select(schema.state.c.scope, schema.state.c.key),
        "profiles": select(schema.profiles.c.cluster, schema.profiles.c.principal, schema.profiles.c.data),
        "event_keys": select(schema.event_keys.c.key, schema.event_keys.c.cluster, schema.event_keys.c.position),
        "clusters": select(schema.clusters.c.cluster, schema.clusters.c.position),
        "batches": select(schema.batches.c.batch_id, schema.batches.c.events, schema.batches.c.occurrences),
    }
    with engine.connect() as conn:
        return {name: sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                             for row in conn.execute(query)) for name, query in tables.items()}


def with_bad_timestamp(raw: bytes) -> bytes:
    event = orjson.loads(raw)
    event["stageTimestamp"] = event["requestReceivedTimestamp"] = "yesterday at noon"
    return orjson.dumps(event)
