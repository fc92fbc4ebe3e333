"""Backpressure: how far detection is behind the webhook, and when to refuse more.

The backlog is what was acknowledged but not yet through detection: pending spool batches, counted in
events and in body bytes. Past either bound (``[serve] max_backlog_events`` / ``max_backlog_bytes``)
the webhook answers 503 with ``Retry-After``; the API server keeps the batch and sends it again, so a
burst waits in the senders instead of growing the spool without limit and delaying every finding.

The depth is read from the store (the truth when several ``serve`` processes share it) at most every
:data:`REFRESH_SECONDS`; appends of this process in between are added to the last reading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kubeguard.store.spool import Spool, SpoolDepth

REFRESH_SECONDS = 0.5


class Backlog:
    def __init__(
        self,
        spool: Spool,
        *,
        max_events: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spool = spool
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._depth = SpoolDepth(0, 0)
        self._read_at: float | None = None

    def stale(self) -> bool:
        """Whether the next :meth:`depth` reads the store (the webhook then asks from a worker thread)."""
        with self._lock:
            return self._read_at is None or self._clock() - self._read_at >= REFRESH_SECONDS

    def depth(self, *, refresh: bool = True) -> SpoolDepth:
        """The backlog as last read from the store plus this process's appends since (refreshed when stale,
        unless ``refresh`` is false: then never a store read)."""
        if refresh and self.stale():
            fresh = self._spool.depth()
            with self._lock:
                self._depth, self._read_at = fresh, self._clock()
        return self._depth

    def added(self, events: int, size: int) -> None:
        """Count a batch this process just appended, until the next reading includes it."""
        with self._lock:
            depth = self._depth
            self._depth = SpoolDepth(
                depth.pending_batches + 1,
                depth.pending_events + events,
                depth.pending_bytes + size,
                depth.oldest_received_ms,
            )

    def full(self, *, refresh: bool = True) -> str | None:
        """Why the webhook must refuse a batch now, or None when there is room (``refresh`` as for
        :meth:`depth`)."""
        depth = self.depth(refresh=refresh)
        if depth.pending_events >= self.max_events:
            return f"{depth.pending_events} events wait for detection (limit {self.max_events})"
        if depth.pending_bytes >= self.max_bytes:
            return f"{depth.pending_bytes} bytes wait for detection (limit {self.max_bytes})"
        return None
