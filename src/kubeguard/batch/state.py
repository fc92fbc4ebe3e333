"""Detector state as a batch sees it: read from the store, changed in memory, written with the batch.

Three kinds of state change while a batch is detected, and all of them are written by the batch's own
transaction (:mod:`kubeguard.batch.processor`), never on their own:

* first-seen keys (``kg_state``) through :class:`BatchKeys`, the detectors' ``StateStore``;
* the de-duplication window (``kg_event_keys``, one row per batch and cluster) through :class:`StoredWindow`;
* anomaly profiles (``kg_profiles``), one row per principal the batch taught something, plus the cluster's
  own row (its learning clock and cluster-wide features), through :func:`changed_profiles`.

What a process holds in memory is a cache of committed state, valid for a cluster while the cluster's
version in ``kg_clusters`` is the one the cache was filled at; a batch that fails drops the caches of its
clusters, so a retry starts from what the store holds, never from what the failed attempt learned.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from kubeguard.batch.window import DEDUP_WINDOW, EventWindow
from kubeguard.detectors.anomaly.baselines import BLOB_NAME as LEGACY_BLOB
from kubeguard.detectors.anomaly.baselines import Baselines
from kubeguard.detectors.anomaly.profile import ClusterProfile, Counts, PrincipalProfile
from kubeguard.store import schema
from kubeguard.store.database import now_ms
from kubeguard.store.state import MAX_KEY_LENGTH, MAX_SCOPE_LENGTH, _fit

#: Cached first-seen answers (present and absent) before the cache starts again.
KEY_CACHE_SIZE = 200_000


def dialect_insert(conn: Connection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def upsert_rows(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[Any], changing: list[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE (or DO NOTHING when nothing changes) for many rows.

    With ``RETURNING``, SQLAlchemy sends the rows as multi-row statements ("insertmanyvalues", compiled
    once); a plain executemany would make a statement per row, most of a batch's commit cost.
    """
    statement = dialect_insert(conn, table)
    if changing:
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in changing}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    conn.execute(statement.returning(*keys), rows).close()


class BatchKeys:
    """``StateStore`` for detectors during a batch: answers from cache or the batch's connection, writes later."""

    def __init__(self) -> None:
        #: The connection of the batch being detected; set by the processor for the batch's duration.
        self.conn: Connection | None = None
        self._present: dict[tuple[str, str], bool] = {}
        #: This batch's changes: cell → True (remembered) or False (forgotten).
        self.changes: dict[tuple[str, str], bool] = {}
        #: The first store error a read met in this batch. Detectors run under the engine's "a broken
        #: detector must not blind the rest" guard, which would swallow it and let the batch commit an
        #: answer the store never gave; the processor fails the batch on it instead.
        self.error: BaseException | None = None

    def _cell(self, scope: str, key: str) -> tuple[str, str]:
        return (_fit(scope, MAX_SCOPE_LENGTH), _fit(key, MAX_KEY_LENGTH))

    def _is_present(self, cell: tuple[str, str]) -> bool:
        known = self._present.get(cell)
        if known is not None:
            return known
        if self.conn is None:
            raise RuntimeError("detector state read outside a batch")
        table = schema.state
        query = select(table.c.key).where(table.c.scope == cell[0], table.c.key == cell[1])
        try:
            found = self.conn.execute(query).first() is not None
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            raise
        if len(self._present) >= KEY_CACHE_SIZE:
            self._present.clear()
        self._present[cell] = found
        return found

    def first_seen(self, scope: str, key: str) -> bool:
        cell = self._cell(scope, key)
        if self._is_present(cell):
            return False
        self._present[cell] = True
        self.changes[cell] = True
        return True

    def seen(self, scope: str, key: str) -> bool:
        return self._is_present(self._cell(scope, key))

    def forget(self, scope: str, key: str) -> None:
        cell = self._cell(scope, key)
        if self._is_present(cell) or cell in self.changes:
            self._present[cell] = False
            self.changes[cell] = False

    def write(self, conn: Connection) -> int:
        """Write this batch's changes into ``conn``'s transaction; returns how many."""
        table = schema.state
        stamp = now_ms()
        added = [{"scope": s, "key": k, "created_at_ms": stamp} for (s, k), present in self.changes.items() if present]
        removed = [cell for cell, present in self.changes.items() if not present]
        if added:
            upsert_rows(conn, table, added, [table.c.scope, table.c.key], [])
        for start in range(0, len(removed), 500):
            chunk = removed[start : start + 500]
            conn.execute(delete(table).where(tuple_(table.c.scope, table.c.key).in_(chunk)))
        count = len(self.changes)
        self.changes = {}
        return count

    def invalidate(self) -> None:
        """Forget every cached answer and this batch's changes (a batch failed, or another process wrote)."""
        self._present.clear()
        self.changes = {}
        self.error = None


def event_key(cluster: str, audit_id: str, kind: str) -> int:
    """The stored form of a de-duplication key: a signed 64-bit digest (collisions: ~1e-9 in a full window)."""
    digest = hashlib.blake2b(f"{cluster}\x1f{audit_id}\x1f{kind}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class StoredWindow(EventWindow):
    """The de-duplication window of :class:`EventWindow`, cached per cluster and written with each batch."""

    def __init__(self, size: int = DEDUP_WINDOW) -> None:
        super().__init__(size)
        #: Keys this batch counted, per cluster: digest → position.
        self.added: dict[str, dict[int, int]] = {}

    def _positions_of(self, cluster: str) -> dict[Any, int]:
        if cluster not in self._positions:
            raise RuntimeError(f"de-duplication window of cluster {cluster!r} not loaded")
        return super()._positions_of(cluster)

    first = EventWindow.first_with_hooks

    def _key(self, cluster: str, audit_id: str, kind: str) -> Any:
        return event_key(cluster, audit_id, kind)

    def _counted(self, cluster: str, key: Any, position: int) -> None:
        added = self.added.get(cluster)
        if added is None:
            added = self.added[cluster] = {}
        added[key] = position

    def loaded(self, cluster: str) -> bool:
        return cluster in self._positions

    def position(self, cluster: str) -> int:
        return self._counts.get(cluster, 0)

    def load(self, conn: Connection, cluster: str) -> None:
        """Fill the cluster's window from the store: the keys counted within the last ``size`` events.

        The cluster's clock is its newest run's last position (pruning removes only runs out of the
        window); a key counted again later appears in a later run, which wins.
        """
        table = schema.event_keys
        newest = conn.execute(select(func.max(table.c.last_position)).where(table.c.cluster == cluster)).scalar()
        count = int(newest or 0)
        rows = conn.execute(
            select(table.c.digests)
            .where(table.c.cluster == cluster, table.c.last_position > count - self.size)
            .order_by(table.c.last_position)
        )
        positions: dict[int, int] = {}
        for (packed,) in rows:
            values = unpack_keys(bytes(packed))
            positions.update(zip(values[0::2], values[1::2], strict=True))
        self._positions[cluster] = {key: at for key, at in positions.items() if count - at < self.size}
        self._counts[cluster] = count

    def drop(self, cluster: str) -> None:
        self._positions.pop(cluster, None)
        self._counts.pop(cluster, None)
        self.added.pop(cluster, None)

    def write(self, conn: Connection) -> int:
        """Write the keys this batch counted as one run per cluster; delete runs wholly out of the window.

        A run is one row whatever the batch's size (16 bytes a key), so a batch costs one insert here,
        not one index entry per event; pruning removes a run or two at a time.
        """
        table = schema.event_keys
        written = 0
        for cluster, added in self.added.items():
            if not added:
                continue
            flat = [value for pair in added.items() for value in pair]
            count = self._counts[cluster]
            conn.execute(
                insert(table).values(
                    cluster=cluster, first_position=min(added.values()), last_position=count, digests=pack_keys(flat)
                )
            )
            written += len(added)
            if count > self.size:
                conn.execute(
                    delete(table).where(table.c.cluster == cluster, table.c.last_position <= count - self.size)
                )
        self.added = {}
        return written


def pack_keys(values: list[int]) -> bytes:
    """Signed 64-bit integers, little-endian, as one blob."""
    packed = array("q", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack_keys(data: bytes) -> list[int]:
    packed = array("q")
    packed.frombytes(data)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


# -- anomaly profiles, one row each ---------------------------------------------------------------------


class _ClusterHead(msgspec.Struct, omit_defaults=True):
    """The cluster's own row: its learning clock and cluster-wide features (principals have rows of their own)."""

    first: int = 0
    last: int = 0
    features: dict[str, Counts] = {}


_encoder = msgspec.msgpack.Encoder()
_principal_decoder = msgspec.msgpack.Decoder(PrincipalProfile)
_head_decoder = msgspec.msgpack.Decoder(_ClusterHead)


def load_profiles(conn: Connection, baselines: Baselines, cluster: str) -> None:
    """Replace what ``baselines`` holds for ``cluster`` with the store's rows."""
    table = schema.profiles
    rows = conn.execute(select(table.c.principal, table.c.data).where(table.c.cluster == cluster))
    head: _ClusterHead | None = None
    principals: dict[str, PrincipalProfile] = {}
    for principal, data in rows:
        if principal == "":
            head = _head_decoder.decode(bytes(data))
        else:
            principals[principal] = _principal_decoder.decode(bytes(data))
    if head is None:
        baselines.clusters.pop(cluster, None)
        return
    baselines.clusters[cluster] = ClusterProfile(
        first=head.first, last=head.last, principals=principals, features=head.features
    )


def write_profiles(conn: Connection, baselines: Baselines) -> int:
    """Write the rows of every profile the batch changed (deleting evicted principals); returns how many."""
    changed = baselines.changed
    if not changed:
        return 0
    table = schema.profiles
    upserts: list[dict[str, Any]] = []
    removed: list[tuple[str, str]] = []
    for cluster_name, principal in sorted(changed):
        cluster = baselines.clusters.get(cluster_name)
        if principal == "":
            if cluster is not None:
                head = _ClusterHead(first=cluster.first, last=cluster.last, features=cluster.features)
                upserts.append({"cluster": cluster_name, "principal": "", "data": _encoder.encode(head)})
            continue
        profile = cluster.principals.get(principal) if cluster is not None else None
        if profile is None:
            removed.append((cluster_name, principal))
        else:
            upserts.append({"cluster": cluster_name, "principal": principal, "data": _encoder.encode(profile)})
    if upserts:
        upsert_rows(conn, table, upserts, [table.c.cluster, table.c.principal], ["data"])
    for start in range(0, len(removed), 500):
        chunk = removed[start : start + 500]
        conn.execute(delete(table).where(tuple_(table.c.cluster, table.c.principal).in_(chunk)))
    changed.clear()
    return len(upserts) + len(removed)


def import_legacy_baselines(conn: Connection) -> int:
    """Move the baselines a version-2 store kept as one blob into profile rows (once, at the upgrade).

    Returns how many rows were written. The blob goes: from now on every batch writes the rows it changed.
    """
    blobs = schema.blobs
    data = conn.execute(select(blobs.c.data).where(blobs.c.name == LEGACY_BLOB)).scalar()
    if data is None:
        return 0
    baselines = Baselines.from_bytes(bytes(data))
    baselines.changed = {
        (cluster, principal)
        for cluster, profile in baselines.clusters.items()
        for principal in ("", *profile.principals)
    }
    written = write_profiles(conn, baselines)
    conn.execute(delete(blobs).where(blobs.c.name == LEGACY_BLOB))
    return written
