"""The tables of the store, in SQLAlchemy Core, portable between SQLite and PostgreSQL.

Findings keep their full wire JSON in ``body`` (the API returns it verbatim) plus copies of the fields that
criteria, sorting and statistics touch most, as indexed columns. Timestamps that queries compare are kept
as epoch milliseconds (``BigInteger``) so ranges are numeric on both dialects. JSON documents are stored as
text so the same code runs everywhere.

Threat lists and trusted lists share ``ip_sets``: they have the same members and differ only in ``kind``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

schema_version = Table(
    "kg_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at_ms", BigInteger, nullable=False),
)

detectors = Table(
    "kg_detectors",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("publishing_frequency", String(32), nullable=False),
    Column("features", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("client_token", String(64)),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

findings = Table(
    "kg_findings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("detector_id", String(32), nullable=False),
    Column("type", String(100), nullable=False),
    Column("severity", Float, nullable=False),
    Column("cluster", String(255), nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("count", Integer, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("event_last_seen_ms", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_kg_findings_detector_updated", "detector_id", "updated_at_ms"),
    Index("ix_kg_findings_type", "type"),
    Index("ix_kg_findings_severity", "severity"),
    Index("ix_kg_findings_cluster", "cluster"),
    Index("ix_kg_findings_archived", "archived"),
)

filters = Table(
    "kg_filters",
    metadata,
    Column("detector_id", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("criteria", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

ip_sets = Table(
    "kg_ip_sets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("detector_id", String(32), nullable=False, index=True),
    #: ``THREAT`` (ThreatIntelSet) or ``TRUSTED`` (IPSet).
    Column("kind", String(16), nullable=False),
    Column("name", String(300), nullable=False),
    Column("format", String(32), nullable=False),
    Column("location", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("tags", Text, nullable=False),
    Column("expected_bucket_owner", String(12)),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

state = Table(
    "kg_state",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("created_at_ms", BigInteger, nullable=False),
)

blobs = Table(
    "kg_blobs",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

spool = Table(
    "kg_spool",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("cluster", String(255), nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    #: Null while the batch waits for detection; set when its findings are committed.
    Column("done_at_ms", BigInteger),
    #: Why detection failed on the batch, when it did; the batch is then done but not silently dropped.
    Column("error", Text),
    #: Size of ``body``: the backlog is bounded in bytes as well as in events.
    Column("body_bytes", BigInteger, nullable=False, server_default="0"),
    Index("ix_kg_spool_pending", "done_at_ms", "id"),
)

# -- one transaction per batch (kubeguard.batch) --------------------------------------------------------

batches = Table(
    "kg_batches",
    metadata,
    #: The caller's name for the batch (``spool:42``, a bus message id); a batch is stored once under it.
    Column("batch_id", String(255), primary_key=True),
    Column("cluster", String(255), nullable=False),
    Column("done_at_ms", BigInteger, nullable=False),
    Column("events", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("occurrences", Integer, nullable=False),
    Index("ix_kg_batches_done", "done_at_ms"),
)

clusters = Table(
    "kg_clusters",
    metadata,
    Column("cluster", String(255), primary_key=True),
    #: Bumped by every batch of the cluster: a process whose cached state has another version reloads it.
    Column("version", BigInteger, nullable=False),
    #: Events of the cluster counted so far: the clock of the de-duplication window.
    Column("position", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

profiles = Table(
    "kg_profiles",
    metadata,
    Column("cluster", String(255), primary_key=True),
    #: The principal whose anomaly profile this is; "" holds the cluster's own profile and learning clock.
    Column("principal", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

event_keys = Table(
    "kg_event_keys",
    metadata,
    #: 64-bit digest of (cluster, auditID, stage kind).
    Column("key", BigInteger, primary_key=True, autoincrement=False),
    Column("cluster", String(255), nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_kg_event_keys_cluster_position", "cluster", "position"),
)

#: Bus batches on which detection raised: attempts so far (shared by every worker) and, once the batch was
#: moved to the dead-letter subject, when and why. Kept so operators see them in /api/spool and /metrics.
batch_failures = Table(
    "kg_batch_failures",
    metadata,
    Column("batch_key", String(64), primary_key=True),
    Column("cluster", String(255), nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("first_failed_at_ms", BigInteger, nullable=False),
    #: Null while the batch is still being retried; set when it went to the dead-letter subject.
    Column("dead_at_ms", BigInteger, index=True),
)
