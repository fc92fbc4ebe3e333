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
    event,
    false,
    func,
)

from kubeguard.store.finding_counts import on_metadata_create as _install_count_triggers

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


def _sorted_text(length: int) -> String:
    """Text that queries sort by code point: ``COLLATE "C"`` on PostgreSQL (SQLite's default already is).

    Queries order by ``column COLLATE "C"`` to match Python's order; an index serves that order only when
    it was built with the same collation, so the columns carry it (schema version 12 converts old stores).
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


findings = Table(
    "kg_findings",
    metadata,
    Column("id", _sorted_text(64), primary_key=True),
    Column("detector_id", String(32), nullable=False),
    Column("type", _sorted_text(100), nullable=False),
    Column("severity", Float, nullable=False),
    Column("cluster", _sorted_text(255), nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("count", Integer, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("event_last_seen_ms", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    # Version 7 (kubeguard.store.finding_columns): more queried fields, null when the finding lacks them.
    Column("account_id", _sorted_text(64)),
    Column("event_first_seen_ms", BigInteger),
    Column("username", _sorted_text(512)),
    Column("namespace", _sorted_text(255)),
    Column("resource_type", _sorted_text(64)),
    #: True when every indexed column is an exact copy of its wire field (see finding_columns.regular);
    #: queries run in SQL only when all of a detector's rows are regular.
    Column("regular", Boolean),
    # Version 12: on PostgreSQL it carries the grouped fields, so statistics over an updatedAt range (the
    # console's "last 7 days", which the counts cannot answer) read only the range of this index.
    Index(
        "ix_kg_findings_q_updated_range",
        "detector_id",
        "updated_at_ms",
        postgresql_include=["type", "cluster", "account_id", "severity", "archived"],
    ),
    # Version 15: the console summary: each cluster's newest open finding, and open findings counted by
    # severity and type over a range of last event times, cluster by cluster.
    Index("ix_kg_findings_summary", "archived", "cluster", "event_last_seen_ms", "severity", "type"),
    # Version 16: the console findings list's groups by type, read from the index alone (with
    # ix_kg_findings_list_updated below).
    Index("ix_kg_findings_list_groups", "archived", "type", "severity", "count"),
    Index("ix_kg_findings_type", "type"),
    Index("ix_kg_findings_severity", "severity"),
    Index("ix_kg_findings_cluster", "cluster"),
    Index("ix_kg_findings_archived", "archived"),
    *(
        Index(f"ix_kg_findings_q_{name}", "detector_id", *columns)
        for name, columns in (
            ("updated", ("updated_at_ms", "id")),
            ("created", ("created_at_ms", "id")),
            ("last_seen", ("event_last_seen_ms", "id")),
            ("first_seen", ("event_first_seen_ms", "id")),
            ("severity", ("severity", "id")),
            ("severity_updated", ("severity", "updated_at_ms")),
            ("count", ("count", "id")),
            # Version 12: type and account lead to the id, so a keyset page sorted by them is a range scan
            # (grouping still reads only the index); the cluster keeps its updated_at_ms order, which the
            # count triggers and the RESOURCE account probe use, and gets a sort index of its own.
            ("type_id", ("type", "id", "updated_at_ms", "severity")),
            ("cluster", ("cluster", "updated_at_ms", "severity")),
            ("cluster_id", ("cluster", "id")),
            ("account_id", ("account_id", "id", "updated_at_ms", "severity")),
            ("archived", ("archived", "updated_at_ms", "id")),
            ("username", ("username", "id")),
            ("namespace", ("namespace", "id")),
            ("resource_type", ("resource_type", "id")),
        )
    ),
)

#: The rows whose columns are not exact copies (see finding_columns): few or none, so a partial index
#: answers "does this detector have any?" in one probe whatever the planner's statistics say.
#: Version 16: the console findings list's default page (last updated first, then id), walked in index order
#: instead of sorting every open finding.
Index("ix_kg_findings_list_updated", findings.c.archived, findings.c.updated_at_ms.desc(), findings.c.id)
#: Version 18: the findings list sorted by severity (its order, walked from the open-or-not value on; a
#: severity filter is a range of it), and by occurrences within each severity value: the list sorted by
#: count merges one walk per (archived, severity) value of the count cells (see
#: kubeguard.api.console.data), and its groups under a severity filter read this index's range alone.
Index(
    "ix_kg_findings_list_severity",
    findings.c.archived,
    findings.c.severity.desc(),
    findings.c.updated_at_ms.desc(),
    findings.c.id,
)
Index(
    "ix_kg_findings_list_count",
    findings.c.archived,
    findings.c.severity,
    findings.c["count"].desc(),
    findings.c.updated_at_ms.desc(),
    findings.c.id,
    findings.c.type,
)

IRREGULAR_FINDING = func.coalesce(findings.c.regular, false()) == false()
Index(
    "ix_kg_findings_q_irregular",
    findings.c.detector_id,
    sqlite_where=IRREGULAR_FINDING,
    postgresql_where=IRREGULAR_FINDING,
)

#: Pre-aggregated finding counts (schema version 12), kept by triggers on ``kg_findings`` in the writing
#: transaction (see :mod:`kubeguard.store.finding_counts`): one row per combination of the fields that
#: statistics group and filter on most, so GetFindingsStatistics reads thousands of cells, not millions
#: of findings. ``account_id`` is '' with ``has_account`` false for a finding without one (keys are never
#: null, so the primary key is the upsert target on both dialects).
finding_counts = Table(
    "kg_finding_counts",
    metadata,
    Column("detector_id", String(32), primary_key=True),
    Column("archived", Boolean, primary_key=True),
    Column("type", _sorted_text(100), primary_key=True),
    Column("severity", Float, primary_key=True),
    Column("cluster", _sorted_text(255), primary_key=True),
    Column("has_account", Boolean, primary_key=True),
    Column("account_id", _sorted_text(64), primary_key=True),
    Column("findings", BigInteger, nullable=False),
    #: The latest ``updated_at_ms`` among the cell's findings (recomputed when that finding leaves).
    Column("last_updated_ms", BigInteger, nullable=False),
)

#: The same per day of ``updatedAt`` (``updated_at_ms / 86400000``), for groupBy DATE. The cluster is in
#: the key so that workers of different partitions (clusters) never wait on each other's cells.
finding_day_counts = Table(
    "kg_finding_day_counts",
    metadata,
    Column("detector_id", String(32), primary_key=True),
    Column("archived", Boolean, primary_key=True),
    Column("severity", Float, primary_key=True),
    Column("cluster", _sorted_text(255), primary_key=True),
    Column("day", BigInteger, primary_key=True),
    Column("findings", BigInteger, nullable=False),
    Column("last_updated_ms", BigInteger, nullable=False),
)

#: Every cell of ``kg_finding_counts`` per day of ``updatedAt`` (schema version 14), the day second in the key:
#: statistics over an ``updatedAt`` window (the console's "last 7 days") sum the cells of the whole days it
#: spans and group only the findings of its partial first and last days (see
#: :mod:`kubeguard.store.finding_statistics`).
finding_window_counts = Table(
    "kg_finding_window_counts",
    metadata,
    Column("detector_id", String(32), primary_key=True),
    Column("day", BigInteger, primary_key=True),
    Column("archived", Boolean, primary_key=True),
    Column("type", _sorted_text(100), primary_key=True),
    Column("severity", Float, primary_key=True),
    Column("cluster", _sorted_text(255), primary_key=True),
    Column("has_account", Boolean, primary_key=True),
    Column("account_id", _sorted_text(64), primary_key=True),
    Column("findings", BigInteger, nullable=False),
    Column("last_updated_ms", BigInteger, nullable=False),
    sqlite_with_rowid=False,
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

rule_associations = Table(
    "kg_rule_associations",
    metadata,
    Column("id", String(64), primary_key=True),
    #: One association per rule: it sets the rule's mode (LIVE or DRY_RUN).
    Column("rule_id", String(100), nullable=False, unique=True),
    Column("mode", String(16), nullable=False),
    Column("tags", Text, nullable=False),
    Column("client_token", String(64)),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

#: Investigations of a subject (Detective's StartInvestigation); ``body`` holds the computed indicators.
investigations = Table(
    "kg_investigations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("entity_arn", String(1024), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("body", Text, nullable=False),
)

#: The webhook spool: one row per batch, narrow; its body is in ``kg_spool_bodies`` under the same id.
spool = Table(
    "kg_spool",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("cluster", String(255), nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("event_count", Integer, nullable=False),
    #: Null while the batch waits for detection; set when its findings are committed.
    Column("done_at_ms", BigInteger),
    #: Why detection failed on the batch, when it did; the batch is then done but not silently dropped.
    Column("error", Text),
    #: Size of ``body``: the backlog is bounded in bytes as well as in events.
    Column("body_bytes", BigInteger, nullable=False, server_default="0"),
    Index("ix_kg_spool_pending", "done_at_ms", "id"),
)

#: Each spool batch's body as received (after gunzip), apart from its row (version 17). In the row, the
#: done mark rewrote the whole 0.5-0.7 MB record on SQLite (a record is rewritten whole when it changes
#: size), inside detection's write transaction, and every read of ``body_bytes`` or ``error`` walked the
#: body's overflow pages; here the body is written once and read only when the batch is decoded.
spool_bodies = Table(
    "kg_spool_bodies",
    metadata,
    #: The ``kg_spool`` row's id; inserted and deleted with it, in the same transaction.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
)

outbox = Table(
    "kg_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    #: The sink this event waits for (its configured or derived name).
    Column("sink", String(255), nullable=False),
    Column("finding_id", String(64), nullable=False),
    #: The finding as stored when it was published, as JSON.
    Column("body", Text, nullable=False),
    Column("enqueued_at_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_error", Text),
    Index("ix_kg_outbox_due", "sink", "next_attempt_ms", "id"),
)

publishing_destinations = Table(
    "kg_publishing_destinations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("detector_id", String(32), nullable=False, index=True),
    Column("destination_type", String(16), nullable=False),
    Column("destination_arn", Text, nullable=False),
    Column("kms_key_arn", Text, nullable=False),
    Column("status", String(40), nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

source_cursors = Table(
    "kg_source_cursors",
    metadata,
    #: ``cloudwatch:<log group>`` or ``file:<path>``: one row per live source.
    Column("source", String(600), primary_key=True),
    #: The source's resume position as JSON (CloudWatch: the time read up to; file: device, inode, offset).
    Column("position", Text, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

source_seen = Table(
    "kg_source_seen",
    metadata,
    Column("source", String(600), primary_key=True),
    #: CloudWatch's ``eventId``: what an overlapping re-read drops.
    Column("event_id", String(128), primary_key=True),
    #: ``auditID/stage`` of the event, so a copy under another eventId is dropped too.
    Column("audit_key", String(200)),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_kg_source_seen_time", "source", "timestamp_ms"),
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
    #: Records of the batch the decoder could not read.
    Column("rejected", Integer, nullable=False),
    Index("ix_kg_batches_done", "done_at_ms"),
)

clusters = Table(
    "kg_clusters",
    metadata,
    Column("cluster", String(255), primary_key=True),
    #: Bumped by every batch of the cluster: a process whose cached state has another version reloads it.
    Column("version", BigInteger, nullable=False),
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
    #: The de-duplication keys one batch counted in one cluster (a "run"): 64-bit digests of (cluster,
    #: auditID, stage kind), each with the cluster's counted-event number when it was counted, packed as
    #: pairs of little-endian int64. The newest run's ``last_position`` is the cluster's clock.
    Column("cluster", String(255), primary_key=True),
    Column("last_position", BigInteger, primary_key=True, autoincrement=False),
    Column("first_position", BigInteger, nullable=False),
    Column("digests", LargeBinary, nullable=False),
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


#: However a store's tables are made (migration 1, or a new store created at once), the count triggers
#: come with them.
event.listen(metadata, "after_create", _install_count_triggers)
