"""Tables of the activity store (Detective's behaviour graph), in SQLAlchemy Core.

Roll-up rows and edges are keyed by a 64-bit digest of their dimensions (:func:`row_key`) rather than by a
composite key of long strings, so an upsert from a batch is one ``INSERT ... ON CONFLICT DO UPDATE`` on
either dialect. Edges use the digest as their id; roll-up rows keep an id in insertion order (rows of the
same hours stay together, which is what every scope read walks) and the digest in a unique index. At the
row counts an activity store reaches (millions) a 64-bit collision is about as likely as a disk error.

- ``kg_activity``: API calls per hour by (cluster, subject, source IP, user agent, verb, resource,
  namespace, object name, request path, outcome) with a count — every panel and drill-down is a
  ``GROUP BY`` over it.
- ``kg_entities``: one row per entity (kind, key) with first and last sighting, event count and attributes
  (groups of a subject, ASN and country of an IP, images and security context of a pod ...).
- ``kg_first_seen``: when a subject first made an API call, used an IP, an ASN or a user agent ("newly
  observed" panels).
- ``kg_edges``: typed relations between entities (subject→IP, pod→image, finding→entity ...) with first and
  last time and a count.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

_ROW_ID = BigInteger().with_variant(Integer, "sqlite")

activity = Table(
    "kg_activity",
    metadata,
    #: Assigned in insertion order, so one hour's rows sit together on disk (the digest below is random).
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("row_key", BigInteger, nullable=False, unique=True),
    Column("hour_ms", BigInteger, nullable=False),
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
    Column("count", Integer, nullable=False),
    Index("ix_kg_activity_subject", "subject", "hour_ms"),
    Index("ix_kg_activity_ip", "ip", "hour_ms"),
    Index("ix_kg_activity_cluster", "cluster", "hour_ms"),
    Index("ix_kg_activity_namespace", "namespace", "name", "hour_ms"),
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
    Index("ix_kg_edges_src", "src_kind", "src_key"),
    Index("ix_kg_edges_dst", "dst_kind", "dst_key"),
    Index("ix_kg_edges_last", "last_ms"),
)


def row_key(*parts: object) -> int:
    """A signed 64-bit digest of ``parts``: the id of a roll-up row or an edge."""
    return digest("\x1f".join(str(part) for part in parts))


def digest(material: str) -> int:
    """A signed 64-bit digest of the text :func:`row_key` joins its parts into."""
    return int.from_bytes(hashlib.blake2b(material.encode(), digest_size=8).digest(), "big", signed=True)
