"""Tables of the activity store (Detective's behaviour graph), in SQLAlchemy Core.

Roll-up shapes and edges are keyed by a 64-bit digest of their dimensions (:func:`row_key`) rather than by
a composite key of long strings, so an upsert from a batch is one ``INSERT ... ON CONFLICT`` on either
dialect. At the row counts an activity store reaches (millions) a 64-bit collision is about as likely as a
disk error.

- ``kg_activity_shapes`` and ``kg_activity``: API calls per hour by (cluster, subject, source IP, user
  agent, verb, resource, namespace, object name, request path, outcome) with a count, the ten strings
  stored once per distinct combination and the hourly counts as integers; every panel and drill-down is a
  ``GROUP BY`` over their join, :data:`activity`. Most of a scan's cost of keeping history was writing the
  strings (and their indexes) again for every hour.
- ``kg_entities``: one row per entity (kind, key) with first and last sighting, event count and attributes
  (groups of a subject, ASN and country of an IP, images and security context of a pod ...).
- ``kg_first_seen``: when a subject first made an API call, used an IP, an ASN or a user agent ("newly
  observed" panels).
- ``kg_edges``: typed relations between entities (subject→IP, pod→image, finding→entity ...) with first and
  last time and a count.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, select

metadata = MetaData()

_ROW_ID = BigInteger().with_variant(Integer, "sqlite")

#: What was called, by whom, from where and how it ended: one row per distinct combination, whatever the hour.
#: Most of a roll-up row's bytes are these strings, and the same combinations come back hour after hour
#: (a controller's watch, a person's usual calls), so they are stored once and each hour's counts name them
#: by ``key`` (:func:`row_key` of the ten values).
activity_shapes = Table(
    "kg_activity_shapes",
    metadata,
    Column("key", BigInteger, primary_key=True, autoincrement=False),
    Column("cluster", String(255), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("user_agent", String(256), nullable=False),
    Column("verb", String(32), nullable=False),
    Column("resource", String(128), nullable=False),
    Column("namespace", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("uri", String(256), nullable=False),
    #: success, failed, unauthorized (401) or forbidden (403).
    Column("outcome", String(12), nullable=False),
    Index("ix_kg_activity_shapes_subject", "subject"),
    Index("ix_kg_activity_shapes_ip", "ip"),
    Index("ix_kg_activity_shapes_cluster", "cluster"),
    Index("ix_kg_activity_shapes_namespace", "namespace", "name"),
)

#: API calls per hour of each shape: three integers a row. Keyed by hour first, so one hour's rows sit
#: together (a scope read and the retention's delete walk hours); the index by shape serves the reads that
#: start from a subject, an address, a namespace. On SQLite the key is the table itself (no rowid).
activity_counts = Table(
    "kg_activity",
    metadata,
    Column("hour_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("shape", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Index("ix_kg_activity_shape", "shape", "hour_ms"),
    sqlite_with_rowid=False,
)

#: The roll-ups as every reader sees them: one row per hour and shape, with the shape's columns. Not a
#: table: a join both databases flatten into the query that selects from it, so a filter on ``subject`` uses
#: the shapes' index and a filter on ``hour_ms`` the counts' key.
_ACTIVITY_COLUMNS = (
    "cluster", "subject", "ip", "user_agent", "verb", "resource", "namespace", "name", "uri", "outcome"
)
activity = (
    select(
        activity_counts.c.hour_ms,
        *(activity_shapes.c[name] for name in _ACTIVITY_COLUMNS),
        activity_counts.c["count"],
    )
    .select_from(activity_counts.join(activity_shapes, activity_counts.c.shape == activity_shapes.c.key))
    .subquery("kg_rollups")
)

entities = Table(
    "kg_entities",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    #: JSON object; merged key by key when new facts arrive.
    Column("attrs", Text, nullable=False),
    Index("ix_kg_entities_first_seen", "kind", "first_seen_ms"),
    Index("ix_kg_entities_last_seen", "last_seen_ms"),
)

first_seen = Table(
    "kg_first_seen",
    metadata,
    Column("subject", String(512), primary_key=True),
    #: call ("verb resource"), ip, asn or user_agent.
    Column("dimension", String(16), primary_key=True),
    Column("value", String(512), primary_key=True),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("cluster", String(255), nullable=False),
)

edges = Table(
    "kg_edges",
    metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=False),
    Column("src_kind", String(16), nullable=False),
    Column("src_key", String(512), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("dst_kind", String(16), nullable=False),
    Column("dst_key", String(512), nullable=False),
    #: Free text that qualifies the relation (the role a binding grants).
    Column("detail", String(512), nullable=False),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Index("ix_kg_edges_last", "last_ms"),
)
# Schema version 18: each end's edges most recent first (then by id), so a node's newest edges are the first
# entries of its range, not its every edge sorted (a namespace has one per pod). They replace the indexes
# of (kind, key) alone, which they serve as well.
Index("ix_kg_edges_src_recent", edges.c.src_kind, edges.c.src_key, edges.c.last_ms.desc(), edges.c.id)
Index("ix_kg_edges_dst_recent", edges.c.dst_kind, edges.c.dst_key, edges.c.last_ms.desc(), edges.c.id)


def row_key(*parts: object) -> int:
    """A signed 64-bit digest of ``parts``: the id of a roll-up row or an edge."""
    return digest("\x1f".join(str(part) for part in parts))


def digest(material: str) -> int:
    """A signed 64-bit digest of the text :func:`row_key` joins its parts into."""
    return int.from_bytes(hashlib.blake2b(material.encode(), digest_size=8).digest(), "big", signed=True)
