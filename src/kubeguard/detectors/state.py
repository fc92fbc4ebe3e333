"""In-process memory for stateful detectors, optionally kept in a file between scans.

The service keeps the same facts in its SQL store (``kubeguard.store``); ``scan --state PATH`` uses this
file-backed form so that a second scan of the next day's logs neither forgets what the first learned nor
raises again what the first already raised.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)

#: Keys remembered per scope (first-seen privileged images, sensitive-mount shapes, wildcard roles ...).
#: Real clusters hold hundreds; the cap only stops a pathological stream (an image tag per build, say) from
#: growing a scan without end. Past it the oldest tenth is forgotten at once: a forgotten image can raise
#: its first-seen finding again, and a forgotten wildcard role is no longer known as one.
MAX_KEYS_PER_SCOPE = 200_000


class _Snapshot(msgspec.Struct):
    version: int = 1
    sets: dict[str, list[str]] = {}
    blobs: dict[str, str] = {}


class MemoryState:
    """Named sets of remembered keys, plus named opaque blobs (baselines serialise into these).

    Each set is a dict in insertion order, so that past :data:`MAX_KEYS_PER_SCOPE` the oldest keys go
    first; ``evicted`` counts them per scope and each eviction is logged.
    """

    def __init__(self, max_keys: int = MAX_KEYS_PER_SCOPE) -> None:
        self.max_keys = max_keys
        self._sets: dict[str, dict[str, None]] = {}
        self.blobs: dict[str, str] = {}
        self.evicted: dict[str, int] = {}

    def first_seen(self, scope: str, key: str) -> bool:
        members = self._sets.get(scope)
        if members is None:
            members = self._sets[scope] = {}
        elif key in members:
            return False
        elif len(members) >= self.max_keys:
            members = self._evict(scope, members)
        members[key] = None
        return True

    def _evict(self, scope: str, members: dict[str, None]) -> dict[str, None]:
        drop = max(1, self.max_keys // 10)
        kept = dict.fromkeys(list(members)[drop:])
        self._sets[scope] = kept
        self.evicted[scope] = self.evicted.get(scope, 0) + drop
        log.warning("state %s: %d keys reached the cap; forgot the %d oldest (%d so far)",
                    scope, self.max_keys, drop, self.evicted[scope])
        return kept

    def seen(self, scope: str, key: str) -> bool:
        return key in self._sets.get(scope, ())

    def forget(self, scope: str, key: str) -> None:
        members = self._sets.get(scope)
        if members is not None:
            members.pop(key, None)

    def get_blob(self, name: str) -> bytes | None:
        """The bytes last stored under ``name`` (kept as base64 text in the snapshot), or None."""
        text = self.blobs.get(name)
        return base64.b64decode(text) if text is not None else None

    def put_blob(self, name: str, data: bytes) -> None:
        self.blobs[name] = base64.b64encode(data).decode("ascii")

    # -- persistence ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> MemoryState:
        state = cls()
        if path.exists():
            snapshot = msgspec.json.decode(path.read_bytes(), type=_Snapshot)
            state._sets = {scope: dict.fromkeys(keys) for scope, keys in snapshot.sets.items()}
            state.blobs = dict(snapshot.blobs)
        return state

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-save leaves the previous state intact.

        Keys are written oldest first, so a later scan that loads the file still forgets the oldest first.
        """
        snapshot = _Snapshot(sets={k: list(v) for k, v in self._sets.items()}, blobs=self.blobs)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(msgspec.json.encode(snapshot))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
