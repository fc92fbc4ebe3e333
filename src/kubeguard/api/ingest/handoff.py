"""The webhook's decoded events, handed to the drainer of the same process so it does not decode them again.

The webhook decodes every batch before it acknowledges it (to refuse a body with no audit event and to
learn its cluster), and the drainer used to decode the stored body a second time: 14% of the service's
interpreter time at 12,000 events/s on SQLite (py-spy), spent twice on the same bytes while detection was
the bottleneck. So, once its spool row is committed, the webhook leaves the decoded batch here under the
row's id, and the drainer takes it instead of decoding the body.

Only what the drainer would decode identically is left: a batch whose cluster was named by the path or
the credential (the drainer decodes with the batch's cluster; without one named, the decoder stamps
events itself). Anything not found here (another process's batch, a batch after a restart, one left out
because the handoff was full, a retry after a failed transaction) is decoded from the stored body, which
stays the truth: the handoff is a cache, never the record. It is bounded in events (decoded events take
about 3.4 KB each, twice their JSON), and a batch the drainer passed without taking is dropped at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from kubeguard.audit.event import AuditEvent

#: Events held at most: two full detection groups (about 55 MB of decoded events).
MAX_EVENTS = 16_000


@dataclass(slots=True, frozen=True)
class Decoded:
    cluster: str
    events: Sequence[AuditEvent]
    rejected: int


class DecodedHandoff:
    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.max_events = max_events
        self._lock = threading.Lock()
        self._held: dict[int, Decoded] = {}
        self._events = 0
        #: The highest spool id the drainer asked for: a batch at or below it will not be asked for again.
        self._passed = 0
        #: Batches taken, and batches the drainer had to decode (not left here), for the tests and metrics.
        self.taken = 0
        self.missed = 0

    def put(self, spool_id: int, cluster: str, events: Sequence[AuditEvent], rejected: int) -> bool:
        """Leave a committed batch's decoded events for the drainer; False when there is no room or the
        drainer has already passed it."""
        with self._lock:
            if spool_id <= self._passed or self._events + len(events) > self.max_events:
                return False
            self._held[spool_id] = Decoded(cluster, events, rejected)
            self._events += len(events)
            return True

    def holds(self, spool_id: int) -> bool:
        """Whether the batch's decoded events are here (only the drainer takes them, so they stay)."""
        with self._lock:
            return spool_id in self._held

    def take(self, spool_id: int, cluster: str) -> Decoded | None:
        """The batch's decoded events if the webhook left them (and for this cluster), else None; drops
        whatever is held for batches at or before it."""
        with self._lock:
            self._passed = max(self._passed, spool_id)
            found = self._held.pop(spool_id, None)
            stale = [key for key in self._held if key < spool_id]
            for key in stale:
                self._events -= len(self._held.pop(key).events)
            if found is not None:
                self._events -= len(found.events)
            if found is None or found.cluster != cluster:
                self.missed += 1
                return None
            self.taken += 1
            return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)
