"""The de-duplication window: has this (cluster, auditID, stage) been counted among the cluster's recent events?

Duplicates in audit logs come from retries and overlapping exports, close together in time, so a key
is a duplicate when it was counted within the last :data:`DEDUP_WINDOW` counted events *of its cluster*.
The window is defined by positions, not by generations or wall time, so it means the same thing in a
single scan, in the service (where it lives in the store, see :mod:`kubeguard.batch.state`) and after a
restart: the answer for an event depends only on the events of its cluster before it.
"""

from __future__ import annotations

from typing import Any

#: How many counted events of a cluster a key is remembered for.
DEDUP_WINDOW = 200_000


class EventWindow:
    """Per cluster: each key's position (the cluster's counted-event number when it was counted)."""

    def __init__(self, size: int = DEDUP_WINDOW) -> None:
        self.size = size
        self._positions: dict[str, dict[Any, int]] = {}
        self._counts: dict[str, int] = {}

    def first(self, cluster: str, audit_id: str, kind: str) -> bool:
        """Count ``(audit_id, kind)`` in ``cluster``; False when it is a duplicate within the window.

        The scan's hot path: keys are plain tuples and no hook is called. A subclass that overrides
        :meth:`_key` or :meth:`_counted` sets ``first = EventWindow.first_with_hooks``.
        """
        positions = self._positions.get(cluster)
        if positions is None or len(positions) > 2 * self.size:
            positions = self._positions_of(cluster)
        key = (audit_id, kind)
        count = self._counts.get(cluster, 0)
        seen = positions.get(key)
        if seen is not None and count - seen < self.size:
            return False
        count += 1
        self._counts[cluster] = positions[key] = count
        return True

    def duplicates(self, cluster: str, keys: list[tuple[str, str]]) -> set[int] | None:
        """Which of ``keys`` (``(audit_id, kind)``, in order) :meth:`first` would call duplicates, without
        counting any; None for a window with hooks (ask :meth:`first` key by key).

        With :meth:`count_many` it is the split scan's bulk path: a chunk of events all new to the window,
        the common case, is told apart by two set operations instead of a call per event.
        """
        if type(self)._key is not EventWindow._key or type(self)._counted is not EventWindow._counted:
            return None
        positions = self._positions_of(cluster)
        if len(set(keys)) == len(keys) and positions.keys().isdisjoint(keys):
            return set()
        found: set[int] = set()
        count = self._counts.get(cluster, 0)
        later: dict[tuple[str, str], int] = {}
        for index, key in enumerate(keys):
            seen = later.get(key)
            if seen is None:
                seen = positions.get(key)
            if seen is not None and count - seen < self.size:
                found.add(index)
                continue
            count += 1
            later[key] = count
        return found

    def count_many(self, cluster: str, keys: list[tuple[str, str]], duplicates: set[int]) -> None:
        """Count ``keys`` but the ``duplicates`` (what :meth:`duplicates` said of them), as :meth:`first`
        called on each in order would."""
        if duplicates:
            keys = [key for index, key in enumerate(keys) if index not in duplicates]
        if not keys:
            return
        positions = self._positions_of(cluster)
        count = self._counts.get(cluster, 0)
        positions.update(zip(keys, range(count + 1, count + 1 + len(keys)), strict=True))
        self._counts[cluster] = count + len(keys)

    def first_with_hooks(self, cluster: str, audit_id: str, kind: str) -> bool:
        """:meth:`first`, with the key made by :meth:`_key` and each counted key passed to :meth:`_counted`."""
        positions = self._positions_of(cluster)
        key = self._key(cluster, audit_id, kind)
        count = self._counts.get(cluster, 0)
        seen = positions.get(key)
        if seen is not None and count - seen < self.size:
            return False
        count += 1
        self._counts[cluster] = count
        positions[key] = count
        self._counted(cluster, key, count)
        return True

    def _positions_of(self, cluster: str) -> dict[Any, int]:
        positions = self._positions.get(cluster)
        if positions is None:
            positions = self._positions[cluster] = {}
        elif len(positions) > 2 * self.size:
            count = self._counts.get(cluster, 0)
            positions = self._positions[cluster] = {k: p for k, p in positions.items() if count - p < self.size}
        return positions

    def _key(self, _cluster: str, audit_id: str, kind: str) -> Any:
        """How a key is held (the cluster is implied by the table it is in)."""
        return (audit_id, kind)

    def _counted(self, cluster: str, key: Any, position: int) -> None:
        """Called for each key counted (the stored window records it for the batch's transaction)."""
