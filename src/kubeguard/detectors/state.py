"""In-process memory for stateful detectors, optionally kept in a file between scans.

The service keeps the same facts in its SQL store (``kubeguard.store``); ``scan --state PATH`` uses this
file-backed form so that a second scan of the next day's logs neither forgets what the first learned nor
raises again what the first already raised.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

import msgspec


class _Snapshot(msgspec.Struct):
    version: int = 1
    sets: dict[str, list[str]] = {}
    blobs: dict[str, str] = {}


class MemoryState:
    """Named sets of remembered keys, plus named opaque blobs (baselines serialise into these)."""

    def __init__(self) -> None:
        self._sets: dict[str, set[str]] = {}
        self.blobs: dict[str, str] = {}

    def first_seen(self, scope: str, key: str) -> bool:
        members = self._sets.setdefault(scope, set())
        if key in members:
            return False
        members.add(key)
        return True

    def seen(self, scope: str, key: str) -> bool:
        return key in self._sets.get(scope, ())

    def forget(self, scope: str, key: str) -> None:
        self._sets.get(scope, set()).discard(key)

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
            state._sets = {scope: set(keys) for scope, keys in snapshot.sets.items()}
            state.blobs = dict(snapshot.blobs)
        return state

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-save leaves the previous state intact."""
        snapshot = _Snapshot(sets={k: sorted(v) for k, v in self._sets.items()}, blobs=self.blobs)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(msgspec.json.encode(snapshot))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
