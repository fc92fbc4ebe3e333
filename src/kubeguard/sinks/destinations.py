"""GuardDuty publishing destinations: S3 exports created through the API, run as sinks of the publisher.

A destination is kept in the store (``kg_publishing_destinations``) and becomes an S3 sink named
``publishing-destination:{id}`` with its own outbox, so an export survives restarts and outages like any
configured sink. It exports at ``[serve] publishing_interval_seconds``, else at the detector's
``findingPublishingFrequency`` as GuardDuty does. Deleting the destination discards its backlog.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, select, update

from kubeguard.findings.publish import Publisher
from kubeguard.sinks.options import S3Options
from kubeguard.sinks.s3 import parse_bucket_arn
from kubeguard.store import detectors, schema
from kubeguard.store.database import now_ms

log = logging.getLogger(__name__)
_table = schema.publishing_destinations
FREQUENCY_SECONDS = {"FIFTEEN_MINUTES": 900.0, "ONE_HOUR": 3600.0, "SIX_HOURS": 21600.0}


@dataclass(slots=True)
class DestinationRecord:
    id: str
    detector_id: str
    destination_type: str
    destination_arn: str
    kms_key_arn: str
    status: str
    tags: dict[str, str]

    @property
    def sink_name(self) -> str:
        return f"publishing-destination:{self.id}"


def create(conn: Connection, detector_id: str, arn: str, kms_key_arn: str, tags: dict[str, str]) -> DestinationRecord:
    record = DestinationRecord(secrets.token_hex(16), detector_id, "S3", arn, kms_key_arn, "PUBLISHING", tags)
    moment = now_ms()
    conn.execute(
        _table.insert().values(
            id=record.id, detector_id=detector_id, destination_type="S3", destination_arn=arn,
            kms_key_arn=kms_key_arn, status=record.status, tags=orjson.dumps(tags).decode(),
            created_at_ms=moment, updated_at_ms=moment,
        )
    )
    return record


def list_for(conn: Connection, detector_id: str | None = None) -> list[DestinationRecord]:
    query = select(_table).order_by(_table.c.created_at_ms, _table.c.id)
    if detector_id is not None:
        query = query.where(_table.c.detector_id == detector_id)
    return [_record(row) for row in conn.execute(query).mappings()]


def get(conn: Connection, detector_id: str, destination_id: str) -> DestinationRecord | None:
    row = conn.execute(
        select(_table).where(_table.c.detector_id == detector_id, _table.c.id == destination_id)
    ).mappings().first()
    return None if row is None else _record(row)


def modify(conn: Connection, destination_id: str, **changes: Any) -> None:
    conn.execute(update(_table).where(_table.c.id == destination_id).values(updated_at_ms=now_ms(), **changes))


def remove(conn: Connection, destination_id: str) -> None:
    conn.execute(delete(_table).where(_table.c.id == destination_id))


def _record(row: Any) -> DestinationRecord:
    return DestinationRecord(
        row["id"], row["detector_id"], row["destination_type"], row["destination_arn"], row["kms_key_arn"],
        row["status"], orjson.loads(row["tags"]),
    )


def interval_seconds(conn: Connection, record: DestinationRecord, configured: float) -> float:
    if configured > 0:
        return configured
    detector = detectors.get(conn, record.detector_id)
    frequency = detector.publishing_frequency if detector is not None else "SIX_HOURS"
    return FREQUENCY_SECONDS.get(frequency, 21600.0)


def sink_options(record: DestinationRecord, interval: float) -> S3Options:
    bucket, prefix = parse_bucket_arn(record.destination_arn)
    return S3Options(
        bucket=bucket,
        prefix=prefix,
        kms_key_arn=record.kms_key_arn,
        interval_seconds=interval,
        name=record.sink_name,
        criteria={"service.detectorId": {"eq": [record.detector_id]}},
    )


def start_destination(engine: Engine, publisher: Publisher, settings: Any, options: Any, metrics: Any,
                      record: DestinationRecord) -> None:
    from kubeguard.sinks.registry import build_route

    with engine.connect() as conn:
        interval = interval_seconds(conn, record, options.publishing_interval_seconds)
    publisher.add(build_route(engine, publisher, sink_options(record, interval), settings, metrics))


def add_publishing_destinations(
    engine: Engine, publisher: Publisher, settings: Any, options: Any, metrics: Any
) -> None:
    """Run every stored destination whose export is on (status PUBLISHING or failing, not STOPPED)."""
    with engine.connect() as conn:
        records = list_for(conn)
    for record in records:
        if record.status == "STOPPED":
            continue
        try:
            start_destination(engine, publisher, settings, options, metrics, record)
        except ValueError as error:
            log.error("publishing destination %s cannot run: %s", record.id, error)
